"""Summary jobs in DynamoDB (`fraudagent.store.jobs`), rendered for the ticketing system, worked by leased workers
(flows.py), delivered on signed callbacks (callbacks.py). The routes are `fraudagent.api.summaries`."""
