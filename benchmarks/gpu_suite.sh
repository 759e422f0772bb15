#!/usr/bin/env bash
# Every GPU number of DESIGN.md in one command (issue 20): runs benchmarks/gpu_suite.py.
#
#   bash benchmarks/gpu_suite.sh [OUT] [gpu_suite.py options, e.g. --quick or --parts fit test]
#
# OUT defaults to $OUT (the device machine's result folder) or ./gpu-suite-out. The suite writes
# OUT/gpu_suite.jsonl (one JSON object per measurement) and OUT/summary.md.
#
# The GPU machine's image has torch, Lightning, torchmetrics and scipy but no TorchIO, nibabel,
# SimpleITK, MONAI or nilearn: /work/shared/gpu/wheels.sh downloads their wheels into .whl/
# (MONAI included; nilearn only as its MNI152 template files in .whl/mni/). When .whl/ is here
# (pass carry: [".whl"]), they are installed offline into /tmp/site first.
set -uo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3}
out=${1:-${OUT:-gpu-suite-out}}
[ $# -gt 0 ] && shift
if compgen -G ".whl/*.whl" >/dev/null; then
  "$python" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site:$PWD${PYTHONPATH:+:$PYTHONPATH}
  # The synthetic data is made from nilearn's MNI152 2009a template, found through nilearn's
  # package folder (lesionres.data.synthetic). nilearn's wheel is too big to carry, so a
  # stand-in package holding only the template files is made when nilearn is absent.
  if [ -d .whl/mni ] && ! "$python" -c 'import importlib.util as u, sys; sys.exit(u.find_spec("nilearn") is None)'; then
    mkdir -p /tmp/site/nilearn/datasets/data
    touch /tmp/site/nilearn/__init__.py
    cp .whl/mni/mni_icbm152_* /tmp/site/nilearn/datasets/data/
  fi
else
  export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
fi
"$python" -c 'import torch; print("torch", torch.__version__, "cuda", torch.cuda.is_available())'
PYTHONUNBUFFERED=1 exec "$python" benchmarks/gpu_suite.py --out "$out" "$@"
