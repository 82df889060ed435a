"""Unit tier: no servers (no DynamoDB Local, no llama.cpp server, no Chroma server, no HTTP server)."""
