"""The plain-PyTorch ceiling for our trainers' steps, measured in the same loan.

Why: a trainer's ms per step means little alone, and a figure from another
machine (../shared/GPU.md has H200 ones) cannot be compared with a run on
an H100. This times eager PyTorch training steps of the shapes our AE and
Patch-DiT trainers run in scripts/gpu/train.sh: bf16 autocast, fused AdamW,
zero_grad(set_to_none=True), random data already on the device, so it is
the time the network itself needs. Our step does more (losses, clip, EMA,
data), so the ratio ours / this is the overhead to account for.

Usage: python3 scripts/gpu/ceiling.py [--device cuda] [--steps 15] [--tiny]
"""
import argparse
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


def norm(c, groups):
    return nn.GroupNorm(min(groups, c), c, eps=1e-6)


class Res(nn.Module):
    def __init__(self, cin, cout, groups):
        super().__init__()
        self.n1, self.c1 = norm(cin, groups), nn.Conv2d(cin, cout, 3, 1, 1)
        self.n2, self.c2 = norm(cout, groups), nn.Conv2d(cout, cout, 3, 1, 1)
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x):
        h = self.c1(F.silu(self.n1(x)))
        return self.skip(x) + self.c2(F.silu(self.n2(h)))


class Autoencoder(nn.Module):
    """diffusers' AutoencoderKL layout, as models/default's `cpu` preset."""

    def __init__(self, channels=(16, 32, 64, 128), layers=1, latent=16, groups=8):
        super().__init__()
        enc, c = [nn.Conv2d(3, channels[0], 3, 1, 1)], channels[0]
        for i, o in enumerate(channels):
            for _ in range(layers):
                enc.append(Res(c, o, groups))
                c = o
            if i < len(channels) - 1:
                enc.append(nn.Conv2d(c, c, 3, 2, 1))
        enc += [Res(c, c, groups), Res(c, c, groups), norm(c, groups), nn.SiLU(), nn.Conv2d(c, 2 * latent, 3, 1, 1)]
        self.encoder = nn.Sequential(*enc, nn.Conv2d(2 * latent, 2 * latent, 1))
        dec, c = [nn.Conv2d(latent, latent, 1), nn.Conv2d(latent, channels[-1], 3, 1, 1)], channels[-1]
        dec += [Res(c, c, groups), Res(c, c, groups)]
        for i, o in enumerate(reversed(channels)):
            for _ in range(layers + 1):
                dec.append(Res(c, o, groups))
                c = o
            if i < len(channels) - 1:
                dec += [nn.Upsample(scale_factor=2.0), nn.Conv2d(c, c, 3, 1, 1)]
        dec += [norm(c, groups), nn.SiLU(), nn.Conv2d(c, 3, 3, 1, 1)]
        self.decoder = nn.Sequential(*dec)

    def forward(self, x):
        mean, _ = self.encoder(x).chunk(2, 1)
        return self.decoder(mean)


class Block(nn.Module):
    """adaLN-Zero DiT block with cross-attention to the texture prompt."""

    def __init__(self, d, heads):
        super().__init__()
        self.heads = heads
        self.n1, self.qkv, self.proj = nn.LayerNorm(d, elementwise_affine=False), nn.Linear(d, 3 * d), nn.Linear(d, d)
        self.n2, self.q, self.kv, self.out = nn.LayerNorm(d), nn.Linear(d, d), nn.Linear(d, 2 * d), nn.Linear(d, d)
        self.n3 = nn.LayerNorm(d, elementwise_affine=False)
        self.mlp = nn.Sequential(nn.Linear(d, 4 * d), nn.GELU(approximate="tanh"), nn.Linear(4 * d, d))
        self.ada = nn.Linear(d, 6 * d)

    def split(self, t):
        b, n, d = t.shape
        return t.view(b, n, self.heads, d // self.heads).transpose(1, 2)

    def attend(self, q, k, v):
        o = F.scaled_dot_product_attention(self.split(q), self.split(k), self.split(v))
        return o.transpose(1, 2).flatten(2)

    def forward(self, x, c, prompt):
        shift1, scale1, gate1, shift2, scale2, gate2 = self.ada(F.silu(c)).unsqueeze(1).chunk(6, -1)
        q, k, v = self.qkv(self.n1(x) * (1 + scale1) + shift1).chunk(3, -1)
        x = x + gate1 * self.proj(self.attend(q, k, v))
        k, v = self.kv(prompt).chunk(2, -1)
        x = x + self.out(self.attend(self.q(self.n2(x)), k, v))
        return x + gate2 * self.mlp(self.n3(x) * (1 + scale2) + shift2)


class PatchDiT(nn.Module):
    def __init__(self, d=192, depth=6, heads=4, channels=16, patch=2):
        super().__init__()
        self.embed = nn.Conv2d(2 * channels, d, patch, patch)
        self.t = nn.Sequential(nn.Linear(256, d), nn.SiLU(), nn.Linear(d, d))
        self.blocks = nn.ModuleList(Block(d, heads) for _ in range(depth))
        self.final = nn.Linear(d, patch * patch * channels)

    def forward(self, x_t, y0, t_freq, prompt):
        x = self.embed(torch.cat([x_t, y0], 1)).flatten(2).transpose(1, 2)
        c = self.t(t_freq)
        for b in self.blocks:
            x = b(x, c, prompt)
        return self.final(x)


def time_steps(model, batch, steps, device):
    opt = torch.optim.AdamW(model.parameters(), 1e-4, fused=device == "cuda")

    def step():
        *inputs, target = batch()
        with torch.autocast(device, torch.bfloat16):
            out = model(*inputs)
        loss = (out.float() - target).abs().mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for _ in range(3):
        step()
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    sync()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    sync()
    return (time.perf_counter() - start) / steps * 1000


def main():
    a = argparse.ArgumentParser()
    a.add_argument("--device", default="cuda")
    a.add_argument("--steps", type=int, default=15)
    a.add_argument("--tiny", action="store_true", help="small batches, for a CPU dry run")
    args = a.parse_args()
    dev = args.device
    torch.backends.cudnn.benchmark = True
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    crops, side, patches = (2, 64, 8) if args.tiny else (16, 256, 256)
    ae = Autoencoder().to(dev)
    ae_batch = lambda: (torch.randn(crops, 3, side, side, device=dev), torch.randn(crops, 3, side, side, device=dev))
    dit = PatchDiT().to(dev)
    dit_batch = lambda: (
        torch.randn(patches, 16, 16, 16, device=dev),
        torch.randn(patches, 16, 16, 16, device=dev),
        torch.randn(patches, 256, device=dev),
        torch.randn(patches, 4 * 64, 192, device=dev),
        torch.randn(patches, 64, 64, device=dev),
    )
    name = torch.cuda.get_device_name() if dev == "cuda" else "cpu"
    for label, model, batch, samples in [
        (f"ae, {crops} crops of {side} px", ae, ae_batch, crops),
        (f"dit, {patches} patches", dit, dit_batch, patches),
    ]:
        ms = time_steps(model, batch, args.steps, dev)
        print(f"ceiling ({name}, plain PyTorch, bf16, fused AdamW): {label}: {ms:.1f} ms / step, {samples / ms * 1000:.0f} samples/s", flush=True)


if __name__ == "__main__":
    main()
