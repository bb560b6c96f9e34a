"""The Gradio page (the only package that imports gradio). Entry point: `realtime.ui.app.launch(args, config)`."""
