"""The chapter's CNN+LSTM sound classifier (section 6.3.2) as a PyTorch module.

mmfuse's C++ forward pass (src/models/sound_cnn_lstm.cpp) loads the
state_dict of this module from model.safetensors (same tensor names) plus
config.json (the constructor arguments, the class labels and the feature
settings), and matches it within 1e-4 (tests/unit/test_sound_cnn_lstm.cpp).

Input: [batch, frames, input_dim] MFCCs of one clip each (standardised per clip).
  cnn:  for each entry of conv_channels: Conv1d(k, padding k // 2) -> ReLU -> MaxPool1d(pool)
        (nn.Sequential indices 3*b, 3*b+1, 3*b+2, as in the chapter)
  lstm: nn.LSTM(conv_channels[-1], hidden_dim, num_layers, batch_first, bidirectional)
  pool: "last"  -> lstm_out[:, -1, :]                  (the chapter's choice; note that for a
                                                          bidirectional LSTM the backward half
                                                          there has only seen the last frame)
        "final" -> [forward state after the last frame, backward state after the first frame]
        "mean"  -> mean of lstm_out over frames
  fc:   Linear(hidden_dim * directions, num_classes) -> logits
"""

import torch
import torch.nn as nn

MODEL_TYPE = "sound_cnn_lstm"


class SoundCnnLstm(nn.Module):
    def __init__(self, input_dim=40, conv_channels=(64, 128), kernel_size=3, pool_size=2, hidden_dim=128,
                 num_layers=1, bidirectional=True, pooling="last", num_classes=5):
        super().__init__()
        if kernel_size % 2 != 1:
            raise ValueError("kernel_size must be odd (same-length convolution)")
        if pooling not in ("last", "final", "mean"):
            raise ValueError("pooling must be last, final or mean")
        layers = []
        channels = input_dim
        for out in conv_channels:
            layers += [nn.Conv1d(channels, out, kernel_size, padding=kernel_size // 2), nn.ReLU(),
                       nn.MaxPool1d(pool_size)]
            channels = out
        self.cnn = nn.Sequential(*layers)
        self.lstm = nn.LSTM(channels, hidden_dim, num_layers=num_layers, batch_first=True,
                            bidirectional=bidirectional)
        self.fc = nn.Linear(hidden_dim * (2 if bidirectional else 1), num_classes)
        self.hidden_dim = hidden_dim
        self.bidirectional = bidirectional
        self.pooling = pooling
        self.config = {
            "model_type": MODEL_TYPE,
            "input_dim": input_dim,
            "conv_channels": list(conv_channels),
            "kernel_size": kernel_size,
            "pool_size": pool_size,
            "hidden_dim": hidden_dim,
            "num_layers": num_layers,
            "bidirectional": bidirectional,
            "pooling": pooling,
            "num_classes": num_classes,
        }

    def min_frames(self):
        """Shortest input that leaves at least one frame after the pools."""
        n = 1
        for _ in self.config["conv_channels"]:
            n *= self.config["pool_size"]
        return n

    def forward(self, x):
        h = self.cnn(x.transpose(1, 2)).transpose(1, 2)
        out, (h_n, _) = self.lstm(h)
        if self.pooling == "last":
            feat = out[:, -1, :]
        elif self.pooling == "mean":
            feat = out.mean(dim=1)
        else:
            feat = torch.cat([h_n[-2], h_n[-1]], dim=1) if self.bidirectional else h_n[-1]
        return self.fc(feat)

    @classmethod
    def from_config(cls, config):
        keys = ("input_dim", "conv_channels", "kernel_size", "pool_size", "hidden_dim", "num_layers",
                "bidirectional", "pooling", "num_classes")
        return cls(**{k: config[k] for k in keys if k in config})


def save_pretrained(model, out_dir, labels, normal_label, features, preprocess, extra=None):
    """Writes out_dir/model.safetensors (the state_dict, float32) and out_dir/config.json."""
    import json
    import os

    import safetensors_io

    if len(labels) != model.config["num_classes"]:
        raise ValueError("one label per class is needed")
    if normal_label not in labels:
        raise ValueError(f"normal label {normal_label!r} is not one of the labels")
    os.makedirs(out_dir, exist_ok=True)
    tensors = {k: v.detach().cpu().numpy().astype("float32") for k, v in model.state_dict().items()}
    safetensors_io.save_file(tensors, os.path.join(out_dir, "model.safetensors"), metadata={"format": "pt"})
    config = dict(model.config)
    config.update({
        "labels": list(labels),
        "normal_label": normal_label,
        "standardize": "per_clip",
        "features": features,
        "preprocess": preprocess,
    })
    config.update(extra or {})
    with open(os.path.join(out_dir, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
        f.write("\n")


def load_pretrained(model_dir):
    import json
    import os

    import safetensors_io

    with open(os.path.join(model_dir, "config.json")) as f:
        config = json.load(f)
    model = SoundCnnLstm.from_config(config)
    state = {k: torch.from_numpy(v) for k, v in safetensors_io.load_file(os.path.join(model_dir, "model.safetensors")).items()}
    model.load_state_dict(state)
    return model.eval(), config
