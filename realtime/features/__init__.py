"""Live feature extractors: raw media in, DMD's three input streams out.

One module per job, each importable without loading any heavy library (torch, mediapipe, ctranslate2,
faster_whisper, opensmile and transformers load inside ``start()``):

================ ==================================================================================
module           job
================ ==================================================================================
``media``        decode files with PyAV: RGB video frames with media times, audio as 16 kHz mono
``face``         MediaPipe FaceLandmarker (VIDEO mode): 52 blendshapes + 269 geometry, 478 landmarks, face flag
``acoustic``     openSMILE eGeMAPSv02 LLDs (25 per 10 ms frame), streaming by overlapping windows
``transcript``   faster-whisper + Silero VAD, LocalAgreement commit of stable words
``text``         MiniLM (all-MiniLM-L6-v2) token states, 384-d, with word times per token
``specs``        the `dmd_model.feature_spec.FeatureSpec` these extractors stamp into their output
================ ==================================================================================

Every processing core is push-style and thread-free: ``push(...) -> outputs``, ``flush()``, ``reset()``.
The streaming pipeline wraps them in threads; offline extraction (``python -m realtime.extract``) calls
the very same cores, so training and serving see features from the same code.
"""
