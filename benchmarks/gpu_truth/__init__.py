"""GPU truth in one command: the real shapes, measured once on the first accelerator we get.

``python -m benchmarks.gpu_truth --out DIR --budget-s 480`` builds a full-size random-weight
Shuttle Jaguar pipeline (FLUX.1 transformer 19 + 38 blocks, T5-XXL, CLIP-L, the 16-channel VAE)
on the GPU in bf16, saves it in the diffusers layout, loads it through ``Engine.load_to_cpu`` +
``to_device`` as the container does, and measures seconds per 1024x1024 image (text encoding,
denoising, VAE decode, encode) through ``Engine`` and ``JaguarClient.local``: eager, regional
compile, torchao fp8 + compile; peak GPU memory at rest, at 4 images per request and during a
reload; pinned vs pageable host-to-GPU copies; and the snapshot-phase rule of Modal memory
snapshots in a subprocess started with ``CUDA_VISIBLE_DEVICES=""``.

Every section runs in ``try``/``except`` (an error is recorded and the run moves on); figures
are written after every section (``gpu_truth.jsonl``, ``gpu_truth.json``, ``gpu_truth.md``);
``--budget-s`` drops the slowest optional sections first and is enforced by a watchdog.
``--small`` runs the same code on a tiny pipeline at 128x128 on CPU (the test suite does).
See ``benchmarks/README.md`` and ``docs/performance.md``.
"""
