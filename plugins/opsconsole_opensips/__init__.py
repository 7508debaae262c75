"""opsconsole opensips plugin."""
