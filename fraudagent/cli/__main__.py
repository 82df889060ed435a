"""`python -m fraudagent.cli`: the same as the `fraudagent` command."""

from fraudagent.cli import main

main()
