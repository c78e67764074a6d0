"""supportchat_app package."""
