"""DMD: Decoupled Multimodal Distilling for Emotion Recognition (Li, Wang, Cui, CVPR 2023)."""
