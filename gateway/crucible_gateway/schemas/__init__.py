"""REST bodies, one module per resource beside ``api/<resource>.py``, and their translation from protos."""
