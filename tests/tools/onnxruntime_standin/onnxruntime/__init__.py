"""Stand-in for the `onnxruntime` package, used only to produce YOLO reference outputs.

onnxruntime is not packaged in Debian, yet Ultralytics' predictor runs ONNX files through
`onnxruntime.InferenceSession`. This module answers the calls that Ultralytics' AutoBackend
makes (InferenceSession(path, providers), get_inputs, get_outputs, get_modelmeta().custom_metadata_map,
run) and computes the output with the PyTorch module that Ultralytics' exporter handed to
torch.onnx.export for that file (registered by the generator through `register`).

Honesty checks, so that the stand-in cannot silently answer for a different network:
- every floating-point initializer of the ONNX file with more than 16 values must be bit-identical
  to a parameter, buffer or tensor attribute (Detect's anchors, strides, grids) of the registered module
  (the exporter folds BatchNorm into the convs before exporting, so the file holds exactly its weights);
- a static input dimension of the file must equal the input's dimension, as onnxruntime requires;
- the output's shape must match the file's static output dimensions.
"""
import hashlib

import numpy as np
import onnx
import torch
from onnx import numpy_helper

__version__ = "0.0.0+pytorch-standin"

_modules = {}  # path of an .onnx file -> torch module that was exported to it


def register(path, module):
    """Remembers the PyTorch module that was exported to `path`."""
    _modules[str(path)] = module


class _NodeArg:
    def __init__(self, value_info):
        self.name = value_info.name
        dims = value_info.type.tensor_type.shape.dim
        self.shape = [d.dim_param if d.dim_param else d.dim_value for d in dims]
        self.type = "tensor(float)"


class _ModelMeta:
    def __init__(self, model):
        self.custom_metadata_map = {p.key: p.value for p in model.metadata_props}
        self.producer_name = model.producer_name
        self.graph_name = model.graph.name
        self.version = model.model_version


def _digest(array):
    array = np.ascontiguousarray(array, dtype=np.float32)
    return hashlib.sha1(array.tobytes()).hexdigest()


class InferenceSession:
    def __init__(self, path, providers=None, sess_options=None, **kwargs):
        self.path = str(path)
        if self.path not in _modules:
            raise RuntimeError(f"onnxruntime stand-in: no PyTorch module registered for {self.path}")
        self.module = _modules[self.path].eval()
        self.model = onnx.load(self.path)
        initializers = {i.name for i in self.model.graph.initializer}
        self._inputs = [_NodeArg(v) for v in self.model.graph.input if v.name not in initializers]
        self._outputs = [_NodeArg(v) for v in self.model.graph.output]
        self._check_weights()
        self.last_input = None
        self.last_outputs = None

    def _check_weights(self):
        tensors = list(self.module.state_dict().values())
        # Detect's anchor points and strides (v8) or grids and anchor grids (v5, in lists) are plain tensor
        # attributes, constant-folded into static exports.
        for m in self.module.modules():
            for v in vars(m).values():
                tensors += [t for t in (v if isinstance(v, (list, tuple)) else [v]) if isinstance(t, torch.Tensor)]
        have = {_digest(t.detach().cpu().numpy()) for t in tensors if t.is_floating_point()}
        checked = 0
        for init in self.model.graph.initializer:
            array = numpy_helper.to_array(init)
            if array.dtype.kind != "f" or array.size <= 16:
                continue
            if _digest(array) not in have:
                raise RuntimeError(f"onnxruntime stand-in: initializer {init.name} {array.shape} is not a weight of the module")
            checked += 1
        if checked == 0:
            raise RuntimeError("onnxruntime stand-in: the file has no weights to check")
        self.checked_initializers = checked

    def get_inputs(self):
        return self._inputs

    def get_outputs(self):
        return self._outputs

    def get_modelmeta(self):
        return _ModelMeta(self.model)

    def get_providers(self):
        return ["CPUExecutionProvider"]

    def run(self, output_names, feeds, run_options=None):
        (name, array), = feeds.items()
        if name != self._inputs[0].name:
            raise RuntimeError(f"onnxruntime stand-in: unknown input {name}")
        for want, got in zip(self._inputs[0].shape, array.shape):
            if isinstance(want, int) and want > 0 and want != got:
                raise RuntimeError(f"onnxruntime stand-in: input shape {array.shape} != {self._inputs[0].shape}")
        with torch.no_grad():
            y = self.module(torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32)))
        ys = list(y) if isinstance(y, (list, tuple)) else [y]
        outs = [t.detach().cpu().numpy() for t in ys]
        by_name = dict(zip([o.name for o in self._outputs], outs))
        for o in self._outputs:
            for want, got in zip(o.shape, by_name[o.name].shape):
                if isinstance(want, int) and want > 0 and want != got:
                    raise RuntimeError(f"onnxruntime stand-in: output shape {by_name[o.name].shape} != {o.shape}")
        self.last_input = array
        self.last_outputs = by_name
        return [by_name[n] for n in (output_names or by_name.keys())]


class SessionOptions:
    pass


def get_available_providers():
    return ["CPUExecutionProvider"]


def get_device():
    return "CPU"
