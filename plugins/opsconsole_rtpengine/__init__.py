"""opsconsole rtpengine plugin."""
