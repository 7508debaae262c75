"""The Textual TUI — the only package that imports textual.

Entry point: `console.ui.app.create_app(service, ...)`.  Environment knobs:
`TEXTUAL_FPS` caps the repaint rate (e.g. 10 over slow SSH), `NO_COLOR=1`
drops colour (status words keep the meaning).
"""
