"""opsconsole host plugin."""
