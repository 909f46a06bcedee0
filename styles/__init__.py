"""jamtui's Textual stylesheets (installed as the jamtui.styles package)."""
