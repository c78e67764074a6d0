"""Small UI components, each a subclass of one NiceGUI element."""
