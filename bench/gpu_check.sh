#!/usr/bin/env bash
# One GPU check, no Ray (issue 16, item 6), about 5 minutes on one CUDA GPU:
#   1. ViT-S/16 and ViT-B/16 at 224 px in bf16: L-SSAT and primary-only training-step
#      throughput, their ratio, and the model FLOPs utilisation (MFU) of each step;
#   2. the descriptor share of an L-SSAT step with the eager and the compiled (Triton) backends;
#   3. the CUDA descriptor equality tests (pytest, the tests skipped without CUDA);
#   4. four plain training processes sharing the one GPU (what --gpus-per-trial 0.25 does)
#      against one process alone.
#
#   bench/gpu_check.sh                     # from the repository root, on the GPU machine
#   PEAK_TFLOPS=989 BATCH=64 STEPS=20 bench/gpu_check.sh
#
# MFU = counted FLOPs of one step (torch.utils.flop_counter, forward + backward) x steps/s /
# PEAK_TFLOPS (default 989: the H100/H200 dense bf16 figure; about 790 is what a large matmul
# reaches in practice). Each part has its own time limit, so one slow part cannot eat the rest.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
export PEAK_TFLOPS=${PEAK_TFLOPS:-989} BATCH=${BATCH:-64} STEPS=${STEPS:-20}
start=$(date +%s)
status=0
section() { echo; echo "== $1 ($(( $(date +%s) - start )) s)"; }

section "device"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
$PY -c "import torch, timm; print('torch', torch.__version__, 'timm', timm.__version__, \
'cuda', torch.cuda.is_available())" || exit 1

section "1+2. L-SSAT vs primary-only step, MFU, descriptor share (eager vs compiled)"
timeout 150 $PY - <<'PY' || status=1
import os, statistics, sys, time
import torch
from torch.utils.flop_counter import FlopCounterMode
sys.path.insert(0, "bench")
from trial import _step_fn  # bench/trial.py: the same step the CPU benchmark times
from lssat.config import TrialConfig
from lssat.descriptors import set_backend

dev = torch.device("cuda")
torch.backends.cuda.matmul.allow_tf32 = True
batch_n, steps = int(os.environ["BATCH"]), int(os.environ["STEPS"])
peak = float(os.environ["PEAK_TFLOPS"]) * 1e12
g = torch.Generator().manual_seed(0)
images = torch.randint(0, 256, (batch_n, 3, 224, 224), dtype=torch.uint8, generator=g).to(dev)
batch = {"image": images, "label": torch.randint(0, 2, (batch_n,), generator=g).to(dev)}

def flops(model, step_batch):
    with FlopCounterMode(display=False) as fc:
        with torch.autocast("cuda", dtype=torch.bfloat16):
            out = model(step_batch)
        out["loss"].backward()
    model.zero_grad(set_to_none=True)
    return fc.get_total_flops()

def desc_time(model):
    torch.cuda.synchronize(); t = time.perf_counter()
    with torch.no_grad():
        model.target(model.prepare(batch["image"], True))
    torch.cuda.synchronize(); return time.perf_counter() - t

print(f"batch {batch_n}, 224 px, patch 16, bf16 autocast, mask ratio 0.75, LBP/hist targets, "
      f"median of {steps} interleaved steps; MFU against {peak / 1e12:g} TFLOP/s")
print(f"{'backbone':22} {'backend':8} {'L-SSAT/s':>9} {'primary/s':>9} {'ratio':>6} "
      f"{'MFU L-SSAT':>10} {'MFU prim':>9} {'desc share':>10}")
for name in ("vit_small_patch16_224", "vit_base_patch16_224"):
    base = dict(backbone=name, img_size=224, patch_size=16, mask_ratio=0.75, descriptor="lbp",
                encoding="hist", decoder_dim=256, decoder_depth=2)
    m_l, step_l = _step_fn(TrialConfig(**base, aux_weight=0.5), dev, batch)
    m_p, step_p = _step_fn(TrialConfig(**base, aux_weight=0.0), dev, batch)
    f_l, f_p = flops(m_l, batch), flops(m_p, batch)
    for backend in ("eager", "compiled"):
        set_backend(backend)
        for _ in range(5):
            step_l(); step_p(); desc_time(m_l)
        tl, tp, td = [], [], []
        for _ in range(steps):
            tl.append(step_l()); tp.append(step_p()); td.append(desc_time(m_l))
        l, p, d = (statistics.median(v) for v in (tl, tp, td))
        print(f"{name:22} {backend:8} {batch_n / l:9.1f} {batch_n / p:9.1f} {l / p:5.2f}x "
              f"{100 * f_l / l / peak:9.1f}% {100 * f_p / p / peak:8.1f}% {100 * d / l:9.1f}%",
              flush=True)
    del m_l, m_p
    torch.cuda.empty_cache()
set_backend("eager")
PY

section "3. CUDA descriptor equality tests"
timeout 90 $PY -m pytest -q -p no:cacheprovider -k "cuda" tests/test_descriptors.py \
    tests/test_descriptors_fused.py tests/test_descriptors_lbp.py || status=1

section "4. four plain training processes sharing the GPU (--gpus-per-trial 0.25)"
worker=$(mktemp --suffix=.py)
cat >"$worker" <<'PY'
import sys, time, torch, timm
secs, tag = float(sys.argv[1]), sys.argv[2]
dev = torch.device("cuda")
model = timm.create_model("vit_small_patch16_224", num_classes=2).to(dev).train()
opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
x = torch.randn(64, 3, 224, 224, device=dev); y = torch.randint(0, 2, (64,), device=dev)
def step():
    with torch.autocast("cuda", dtype=torch.bfloat16):
        loss = torch.nn.functional.cross_entropy(model(x), y)
    opt.zero_grad(set_to_none=True); loss.backward(); opt.step()
for _ in range(5): step()
torch.cuda.synchronize(); t = time.perf_counter(); n = 0
while time.perf_counter() - t < secs:
    step(); n += 1
    if n % 5 == 0: torch.cuda.synchronize()
torch.cuda.synchronize()
print(f"{tag} {64 * n / (time.perf_counter() - t):.1f} samples/s", flush=True)
PY
one=$(timeout 60 $PY "$worker" 15 alone) || status=1
echo "1 process: $one"
pids=()
for i in 1 2 3 4; do timeout 90 $PY "$worker" 30 "proc$i" >"$worker.$i" & pids+=($!); done
for p in "${pids[@]}"; do wait "$p" || status=1; done
cat "$worker".[1-4] 2>/dev/null
$PY - "$one" "$worker" <<'PY'
import glob, sys
alone = float(sys.argv[1].split()[1]) if sys.argv[1].strip() else float("nan")
vals = [float(open(f).read().split()[1]) for f in sorted(glob.glob(sys.argv[2] + ".[1-4]"))
        if open(f).read().strip()]
total = sum(vals)
print(f"4 processes: {total:.1f} samples/s together ({len(vals)} reported), "
      f"{total / alone:.2f}x one process alone ({alone:.1f} samples/s)")
PY
rm -f "$worker" "$worker".[1-4]

section "done"
echo "gpu_check: $( [[ $status -eq 0 ]] && echo ok || echo 'a part failed (see above)' ) in $(( $(date +%s) - start )) s"
exit $status
