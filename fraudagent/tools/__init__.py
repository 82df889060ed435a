"""The agent's tools, one per source of evidence: transaction history (history.py), linked accounts (linked.py),
risk scores (scores.py) and similar past cases (similar_cases.py). Each is a typed function that evidence gathering
and the chat call, and a LangChain tool bound to one case (the model never chooses whose data it reads)."""
