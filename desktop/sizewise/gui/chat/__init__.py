"""The Chat and Writing pages: the conversation list model and view, the chat controller, the sidebar of saved
conversations, the message box, Markdown rendering and writing help."""
