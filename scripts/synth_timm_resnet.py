# Usage: TIMM_SRC=path/to/pytorch-image-models /usr/bin/python3 scripts/synth_timm_resnet.py tests/fixtures/timm_resnet
# (Debian python3-torch; timm run from source, never installed).
# Tiny random-weight timm ResNets saved HF-hub style (config.json via timm's own
# save_config_for_hf + model.safetensors) and their stem/layer1..4 outputs on a
# seeded input, as parity fixtures for mmfuse's timm_resnet.
import json, os, struct, sys
from pathlib import Path
import numpy as np, torch
sys.path.insert(0, os.environ.get('TIMM_SRC', '.'))  # a pytorch-image-models checkout
import timm
from timm.models._hub import save_config_for_hf

def save_safetensors(path, tensors):
    header, blobs, off = {}, [], 0
    for name, t in tensors.items():
        a = np.ascontiguousarray(t.detach().cpu().numpy().astype(np.float32))
        b = a.tobytes()
        header[name] = {"dtype": "F32", "shape": list(a.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b); off += len(b)
    h = json.dumps(header, separators=(',', ':')).encode()
    h += b' ' * ((8 - len(h) % 8) % 8)
    with open(path, 'wb') as f:
        f.write(struct.pack('<Q', len(h))); f.write(h)
        for b in blobs: f.write(b)

def make(out, arch, model_args, size, seed):
    torch.manual_seed(seed)
    m = timm.create_model(arch, pretrained=False, num_classes=10, **model_args).eval()
    # Random BN statistics and affine so the fold is exercised.
    for mod in m.modules():
        if isinstance(mod, torch.nn.BatchNorm2d):
            n = mod.num_features
            mod.running_mean.uniform_(-0.5, 0.5); mod.running_var.uniform_(0.5, 2.0)
            mod.weight.data.uniform_(0.5, 1.5); mod.bias.data.uniform_(-0.2, 0.2)
    out = Path(out); out.mkdir(parents=True, exist_ok=True)
    sd = {k: v for k, v in m.state_dict().items() if not k.endswith('num_batches_tracked')}
    save_safetensors(out / 'model.safetensors', sd)
    save_config_for_hf(m, out / 'config.json', model_args=model_args)
    x = torch.randn(1, 3, size, size, generator=torch.Generator().manual_seed(seed + 1))
    feats = {}
    with torch.no_grad():
        h = m.maxpool(m.act1(m.bn1(m.conv1(x))))
        for name in ['layer1', 'layer2', 'layer3', 'layer4']:
            h = getattr(m, name)(h); feats[name] = h[0].permute(1, 2, 0)  # HWC
    ref = {'input': x[0].permute(1, 2, 0)}; ref.update(feats)
    # Anomalib PatchCore's embedding of an 8-bit photo (64 high, 72 wide):
    # ImageNet-normalised, layer2 and layer3 through AvgPool2d(3, 1, 1), layer3
    # upsampled bilinearly to layer2's grid, concatenated.
    g = torch.Generator().manual_seed(seed + 2)
    photo = torch.randint(0, 256, (64, 72, 3), generator=g).float()
    cfg = m.pretrained_cfg
    xin = ((photo / 255 - torch.tensor(cfg['mean'])) / torch.tensor(cfg['std'])).permute(2, 0, 1)[None]
    with torch.no_grad():
        h = m.maxpool(m.act1(m.bn1(m.conv1(xin))))
        l2 = m.layer2(m.layer1(h)); l3 = m.layer3(l2)
        pool = torch.nn.AvgPool2d(3, 1, 1)
        l2, l3 = pool(l2), pool(l3)
        l3 = torch.nn.functional.interpolate(l3, size=l2.shape[-2:], mode='bilinear')
        emb = torch.cat((l2, l3), 1)[0].permute(1, 2, 0)
    ref['photo'] = photo; ref['patchcore'] = emb
    save_safetensors(out / 'reference.safetensors', ref)
    print(out, {k: tuple(v.shape) for k, v in ref.items()},
          sum(p.numel() for p in m.parameters()))

root = sys.argv[1]
make(f'{root}/resnet18-tiny', 'resnet18', {'layers': [1, 1, 1, 1], 'channels': [8, 16, 24, 32], 'stem_width': 8}, 64, 1)
make(f'{root}/wide_resnet50_2-tiny', 'wide_resnet50_2', {'layers': [1, 2, 1, 1], 'channels': [4, 8, 12, 16], 'stem_width': 8}, 64, 2)
