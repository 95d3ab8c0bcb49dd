"""runinfra: the ChatService contract (runinfra.chat.v1), serving scaffolding for its
implementations (runinfra.serving, runinfra.logs) and the names every side shares."""
