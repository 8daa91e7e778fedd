"""The torch-free core every other package builds on: numpy, Pillow and the standard library only.

- `config`: presets (`tiny`, `mobile`, `sd15`) as dataclasses; `stages`: the stage contract (names,
  shapes, dtypes of every stage's inputs and outputs); `tokenizer`: the CLIP BPE tokenizer.
- `media`, `preprocess`, `colour`, `blur`: image and video I/O, atomic file and folder writes, pixel
  conversions, LAB colour matching, the Gaussian blur of the Frame Similarity Prior.
- `bundle`, `manifest`, `parity`, `runners`, `measure`: an exported bundle's files and hashes, its
  manifest, the parity gate, the onnxruntime / LiteRT calls, time and peak memory.
- `cli`: the shape every command-line entry point shares; `errors`: shared exception types;
  `outputs`: what `--overwrite` may replace, and that an output keeps clear of its inputs.

It imports no other package of this project, and no torch (tests check both).
"""

__version__ = "0.1.0"
PROJECT = "i2v-adapter-mobile"  # every manifest's `created_by` starts with it
