"""Audio features for Bind-Your-Avatar, run with the METHOD's Python (never imported by ie-bench).

For each ``--pair in.wav out.pt``: wav2vec2-base-960h on the 16 kHz track, the 12 transformer
layers' hidden states (hidden_states[1:13]), linearly resampled from 50 Hz to ``--fps``, saved
as a float32 tensor (T, 12, 768). Which layers and which model the authors used is unverified
(spec/baselines.md §3.3); validate against the repo's assets/audio_emb/001_0.pt.
"""

import argparse


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--wav2vec", required=True)
    ap.add_argument("--fps", type=float, default=25.0)
    ap.add_argument("--pair", nargs=2, action="append", required=True)
    a = ap.parse_args()
    import soundfile as sf
    import torch
    from transformers import Wav2Vec2Model, Wav2Vec2Processor

    proc = Wav2Vec2Processor.from_pretrained(a.wav2vec, local_files_only=True)
    model = Wav2Vec2Model.from_pretrained(a.wav2vec, local_files_only=True).eval()
    for wav, out in a.pair:
        x, rate = sf.read(wav, dtype="float32")
        assert rate == 16000, f"{wav}: {rate} Hz, expected 16000"
        n = int(round(len(x) / rate * a.fps))
        with torch.no_grad():
            iv = proc(x, sampling_rate=rate, return_tensors="pt").input_values
            hs = model(iv, output_hidden_states=True).hidden_states[1:13]
            h = torch.stack(hs, dim=1)[0]  # (T50, 12, 768)
            h = torch.nn.functional.interpolate(h.permute(1, 2, 0), size=n, mode="linear", align_corners=False)
        torch.save(h.permute(2, 0, 1).contiguous().float(), out)


if __name__ == "__main__":
    main()
