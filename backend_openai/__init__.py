"""A ChatService that forwards each chat turn to an OpenAI-compatible server.

Point it at vLLM, llama.cpp's server, Ollama, TGI or anything else that serves
`/v1/chat/completions` and `/v1/models`; the gateway in front of it then offers
the Responses API over that model server.
"""
