"""What generate, chat and bench share to run on a local model or on a server (``--server URL``)."""
