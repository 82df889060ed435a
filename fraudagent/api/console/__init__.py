"""The analyst console: Jinja2 pages and static JS/CSS served by the API at /console."""
