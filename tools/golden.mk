# Golden fixtures from the real frameworks (issue 3). Included by the Makefile; never part of `make test`.
#
#   make golden      create the isolated framework environments under .golden-venvs/ (never .venv) and
#                    regenerate tests/golden/ with tools/make_golden.py (deterministic: fixed seeds, CPU,
#                    one thread), then rewrite docs/parity.md
#   make golden-family  regenerate only the recurrent-family goldens (tests/golden/family_*.{json,npz}) with
#                    tools/golden_family.py (issue 11; `make golden` runs it too)
#   make golden-family-files  regenerate the real GRU / SimpleRNN model files with their outputs
#                    (tests/fixtures/family_files/) with tools/golden_family_files.py (issue 11 item 5)
#   make golden-ms-api  regenerate only the MindSpore nn/ops/network goldens (tests/golden/mindspore_api/) with
#                    tools/golden_ms_nn.py and tools/golden_ms_nets.py (issue 14)
#   make golden-models  regenerate only the whole-model goldens (tests/golden/models/ and models_extra/: real tf_keras
#                    and Keras 3 model files, .keras and .h5, with their predictions; tests/golden/model_layers.json:
#                    one recorded call per catalogue layer) with tools/golden_models.py, tools/golden_models_extra.py
#                    and tools/golden_model_layers.py (issue 13)
#   make test-live   random configurations side by side with the real frameworks (tests/test_live.py),
#                    inside those environments, with lstm-bridge installed there --no-deps
GOLDEN_PYTHON ?= python3
GOLDEN_VENVS := .golden-venvs
GOLDEN_TF := $(GOLDEN_VENVS)/tf
GOLDEN_MS := $(GOLDEN_VENVS)/ms
GOLDEN_TF_STAMP := $(GOLDEN_TF)/.installed
GOLDEN_MS_STAMP := $(GOLDEN_MS)/.installed
LIVE_TF_STAMP := $(GOLDEN_TF)/.live-installed
LIVE_MS_STAMP := $(GOLDEN_MS)/.live-installed
# Every live tier of the project (tests/test_live.py, tests/test_formats_live.py, ...); a test whose framework
# is absent from the environment skips.
LIVE_TESTS := $(wildcard tests/test_*live.py)
LIVE_PYTEST := -m pytest -q -p no:cacheprovider -m live $(LIVE_TESTS)

.PHONY: golden golden-envs golden-family golden-family-files golden-models golden-ms-api test-live

golden-envs: $(GOLDEN_TF_STAMP) $(GOLDEN_MS_STAMP)

# tensorflow-cpu 2.21.0, tf-keras 2.21.0, keras 3.15.1
$(GOLDEN_TF_STAMP): tools/golden-requirements-tf.txt
	test -x $(GOLDEN_TF)/bin/python || $(GOLDEN_PYTHON) -m venv $(GOLDEN_TF)
	$(GOLDEN_TF)/bin/python -m pip install -q -r tools/golden-requirements-tf.txt
	touch $@

# mindspore 2.10.0 with numpy<2
$(GOLDEN_MS_STAMP): tools/golden-requirements-ms.txt
	test -x $(GOLDEN_MS)/bin/python || $(GOLDEN_PYTHON) -m venv $(GOLDEN_MS)
	$(GOLDEN_MS)/bin/python -m pip install -q -r tools/golden-requirements-ms.txt
	touch $@

golden: golden-envs venv golden-family-files
	@start=$$(date +%s); \
	$(GOLDEN_PYTHON) tools/make_golden.py && \
	$(GOLDEN_PYTHON) tools/golden_family.py && \
	$(GOLDEN_PYTHON) tools/golden_models.py && \
	$(GOLDEN_PYTHON) tools/golden_models_extra.py && \
	$(GOLDEN_TF)/bin/python tools/golden_model_layers.py && \
	$(GOLDEN_PYTHON) tools/golden_ms_nn.py && \
	$(GOLDEN_PYTHON) tools/golden_ms_nets.py && \
	end=$$(date +%s) && echo "make golden: regenerated tests/golden/ in $$((end - start)) s" && \
	$(PY) tools/parity_report.py --make-golden-seconds $$((end - start))

# GRU / SimpleRNN (tf_keras, Keras 3) and nn.GRU / nn.RNN (MindSpore): tests/golden/family_<flavour>.{json,npz}
golden-family: golden-envs
	@start=$$(date +%s); \
	$(GOLDEN_PYTHON) tools/golden_family.py && \
	end=$$(date +%s) && echo "make golden-family: regenerated tests/golden/family_* in $$((end - start)) s"

# Whole Keras models (issue 13 item 6): tests/golden/models/<flavour>/<id>.{keras,h5} and <flavour>.{json,npz}
golden-models: $(GOLDEN_TF_STAMP)
	@start=$$(date +%s); \
	$(GOLDEN_PYTHON) tools/golden_models.py && \
	$(GOLDEN_PYTHON) tools/golden_models_extra.py && \
	$(GOLDEN_TF)/bin/python tools/golden_model_layers.py && \
	end=$$(date +%s) && echo "make golden-models: regenerated tests/golden/models/, models_extra/ and model_layers.json in $$((end - start)) s"

# tf_keras 2.21 (incl. TF1 CuDNNGRU), Keras 3.15 and MindSpore 2.10 files: tests/fixtures/family_files/
golden-family-files: golden-envs
	TF_USE_LEGACY_KERAS=1 TF_CPP_MIN_LOG_LEVEL=3 CUDA_VISIBLE_DEVICES= $(GOLDEN_TF)/bin/python tools/golden_family_files.py tf_keras
	TF_USE_LEGACY_KERAS=0 TF_CPP_MIN_LOG_LEVEL=3 CUDA_VISIBLE_DEVICES= $(GOLDEN_TF)/bin/python tools/golden_family_files.py keras3
	GLOG_v=3 $(GOLDEN_MS)/bin/python tools/golden_family_files.py mindspore
	chmod 644 tests/fixtures/family_files/*

# The live tier needs lstm-bridge (no dependencies: the framework pins stay as they are), the pinned CPU
# torch and pytest inside each framework environment (and h5py in the MindSpore one, where the format tests
# read Keras files; the TensorFlow environment already has it).
$(LIVE_TF_STAMP): $(GOLDEN_TF_STAMP) pyproject.toml constraints.txt
	$(GOLDEN_TF)/bin/python -m pip install -q -c constraints.txt torch pytest
	$(GOLDEN_TF)/bin/python -m pip install -q --no-deps -e .
	touch $@

$(LIVE_MS_STAMP): $(GOLDEN_MS_STAMP) pyproject.toml constraints.txt
	$(GOLDEN_MS)/bin/python -m pip install -q -c constraints.txt torch pytest h5py 'numpy<2'
	$(GOLDEN_MS)/bin/python -m pip install -q --no-deps -e .
	touch $@

test-live: $(LIVE_TF_STAMP) $(LIVE_MS_STAMP)
	TF_USE_LEGACY_KERAS=1 TF_CPP_MIN_LOG_LEVEL=3 CUDA_VISIBLE_DEVICES= $(GOLDEN_TF)/bin/python $(LIVE_PYTEST)
	TF_USE_LEGACY_KERAS=0 TF_CPP_MIN_LOG_LEVEL=3 CUDA_VISIBLE_DEVICES= $(GOLDEN_TF)/bin/python $(LIVE_PYTEST)
	GLOG_v=3 $(GOLDEN_MS)/bin/python $(LIVE_PYTEST)

# MindSpore's nn Cells, ops and model-zoo networks (issue 14): tests/golden/mindspore_api/ (checkpoints written by
# real MindSpore, outputs and logits) with tools/golden_ms_nn.py and tools/golden_ms_nets.py
golden-ms-api: $(GOLDEN_MS_STAMP)
	@start=$$(date +%s); \
	$(GOLDEN_PYTHON) tools/golden_ms_nn.py && \
	$(GOLDEN_PYTHON) tools/golden_ms_nets.py && \
	end=$$(date +%s) && echo "make golden-ms-api: regenerated tests/golden/mindspore_api in $$((end - start)) s"
