"""Real-time multimodal emotion recognition around DMD. Importing this package is cheap:
heavy libraries (torch, mediapipe, ctranslate2) load lazily inside the stages that need them."""
