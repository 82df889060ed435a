"""Integration tier: the real servers (DynamoDB Local, the llama.cpp server, Chroma on disk, the API over HTTP)."""
