# Fashion-MNIST on a lent GPU with the Keras JAX backend (TensorFlow is not installed there): two recipes x three
# seeds at once, the recipe chosen by mean validation accuracy, its best-validation weights brought back. Prepared
# here (the arrays of the validation split of `training.train`, the recipes) with
#   python -m training.fit_on_arrays prepare --task=fashion_mnist --out=runs/gpu/A $COMMON
#   python -m training.fit_on_arrays prepare --task=fashion_mnist --out=runs/gpu_B $COMMON \
#       --override=prep_type=conv --override=num_bands=4   # then keep only runs/gpu_B/recipe.json as runs/gpu/B
# where COMMON="--epochs=20 --batch_size=256 --override=num_latents=128 --override=latent_dim=256
#   --override=num_self_attends_per_block=4 --override=num_self_attention_heads=8 --override=initializer_range=0.02";
# keras, optree and namex wheels for Python 3.12 in .whl/ (see the device tool's README). Run there with
#   bash training/device_fashion_mnist.sh   (carry: .whl, runs/gpu)
# then here, per seed k of the chosen recipe R: copy R_seed<k>.weights.h5 to runs/gpu/R/seed<k>/best.weights.h5 with
# its history.csv (histories.tgz), `python -m training.fit_on_arrays adopt --run=runs/gpu/R --seed=k`,
# `python -m training.export` and `python -m training.evaluate` as for any run.
set -x
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD KERAS_BACKEND=jax PYTHONUNBUFFERED=1
nvidia-smi -L
XLA_PYTHON_CLIENT_MEM_FRACTION=0.5 timeout 90 python3 benchmarks/fused_attention_gpu.py > "$OUT/fused.log" 2>&1
tail -20 "$OUT/fused.log"
export XLA_PYTHON_CLIENT_MEM_FRACTION=0.12
for recipe in A B; do
  for seed in 0 1 2; do
    timeout 400 python3 -m training.fit_on_arrays fit --run=runs/gpu/$recipe --seeds=$seed \
      --arrays=runs/gpu/A/arrays.npz > runs/gpu/$recipe.$seed.log 2>&1 &
  done
done
wait
tail -3 runs/gpu/*.log
python3 - <<'PY'
import csv, json, os, shutil
out, scores = os.environ["OUT"], {}
for recipe in ("A", "B"):
    best = []
    for seed in (0, 1, 2):
        path = f"runs/gpu/{recipe}/seed{seed}/history.csv"
        rows = list(csv.DictReader(open(path))) if os.path.exists(path) else []
        best.append(max((float(row["val_accuracy"]) for row in rows), default=0.0))
    scores[recipe] = sum(best) / 3
    print(recipe, best, scores[recipe])
chosen = max(scores, key=scores.get)
for seed in (0, 1, 2):
    source = f"runs/gpu/{chosen}/seed{seed}/best.weights.h5"
    if os.path.exists(source):
        shutil.copy(source, f"{out}/{chosen}_seed{seed}.weights.h5")
json.dump({"scores": scores, "chosen": chosen}, open(f"{out}/choice.json", "w"))
PY
tar czf "$OUT/histories.tgz" runs/gpu/*/seed*/history.csv runs/gpu/*/seed*/fit.json runs/gpu/*.log
ls -la "$OUT"
