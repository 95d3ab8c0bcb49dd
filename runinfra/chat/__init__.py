"""Generated code of the runinfra.chat packages, in protoc's own layout."""
