"""Validate the physics benchmark on simulator ground truth and on corrupted negative controls.

Runs `run_physics_benchmark` on held-out scenes with pseudo-models:

- ``simulator``: the simulator's own clips (upper reference);
- ``sim-time-reversed``, ``sim-gravity-flipped``: the same clips with the physics broken;
- ``sim-frozen``: the first frame repeated (nothing moves);

optionally trains the feature network first (for the Fréchet column) and optionally
adds real pipelines (``--model label=path``). Writes ``results.json`` / ``results.md``
under ``--out`` and prints timings. Numbers in docs/evaluation.md come from:

    python benchmarks/bench_evaluation.py --num-prompts 25 --seeds 0 --train-features 400 --out bench_out/evaluation
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np


def frozen(frames: np.ndarray) -> np.ndarray:
    return np.repeat(frames[:1], len(frames), axis=0)


def main() -> None:
    from mmphys_diffusers.evaluation import SimulatorModel, flip_vertically, heldout_scenes, run_physics_benchmark, time_reverse
    from mmphys_diffusers.evaluation.evaluate import evaluate_video
    from mmphys_diffusers.evaluation.features import simulated_training_set, train_feature_network
    from mmphys_diffusers.evaluation.runner import load_model

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--num-prompts", type=int, default=25)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--train-features", type=int, default=0, metavar="N", help="train the feature network on N simulated clips first")
    parser.add_argument("--feature-epochs", type=int, default=15)
    parser.add_argument("--model", action="append", default=[], help="extra models (label=path) to include")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()

    feature_net, feature_info = None, {}
    if args.train_features:
        t0 = time.perf_counter()
        videos, labels, names = simulated_training_set(args.train_features, seed=7)
        feature_net, history = train_feature_network(videos, labels, names, epochs=args.feature_epochs, seed=0)
        # Held-out accuracy on clips from another simulation seed (the benchmark's scenes are separate again).
        test_videos, test_labels, _ = simulated_training_set(100, seed=8)
        import torch

        with torch.no_grad():
            pred = feature_net(feature_net.preprocess(test_videos))[1].argmax(-1).numpy()
        feature_info = {
            "train_clips": len(videos), "epochs": args.feature_epochs, "train_seconds": time.perf_counter() - t0,
            "final_train_accuracy": history["accuracy"][-1], "heldout_accuracy": float((pred == np.array(test_labels)).mean()),
        }
        feature_net.save_pretrained(f"{args.out}/feature_net")
        print("feature network:", json.dumps(feature_info))

    t0 = time.perf_counter()
    scenes = heldout_scenes(args.num_prompts)
    simulate_s = time.perf_counter() - t0
    models = {
        "simulator": SimulatorModel(),
        "sim-time-reversed": SimulatorModel(time_reverse),
        "sim-gravity-flipped": SimulatorModel(flip_vertically),
        "sim-frozen": SimulatorModel(frozen),
    }
    for spec in args.model:
        label, pipe = load_model(spec)
        models[label] = pipe
    t0 = time.perf_counter()
    results = run_physics_benchmark(models, args.out, scenes=scenes, seeds=args.seeds, num_inference_steps=args.steps,
                                    feature_network=feature_net, save_videos=False)
    total_s = time.perf_counter() - t0

    # Scoring cost alone (parsing + every metric), per 17x64x64 video.
    t0 = time.perf_counter()
    for s in scenes:
        evaluate_video(s.reference, s.scene, reference=s.reference)
    per_video_ms = 1000 * (time.perf_counter() - t0) / len(scenes)

    per_family = {}
    for row in results["per_video"]:
        if row["model"] != "simulator":
            continue
        fam = per_family.setdefault(row["family"], {"g_rel_error": [], "restitution_rel_error": [], "penetration_px": [], "permanence": [], "momentum_rel_change": []})
        for k in fam:
            if row.get(k) is not None:
                fam[k].append(row[k])
    summary = {
        "num_prompts": len(scenes), "seeds": args.seeds, "simulate_heldout_seconds": simulate_s, "benchmark_seconds": total_s,
        "evaluate_ms_per_video": per_video_ms, "feature_network": feature_info,
        "simulator_per_family": {f: {k: (float(np.mean(v)) if v else None, float(np.max(v)) if v else None, len(v)) for k, v in d.items()} for f, d in per_family.items()},
    }
    with open(f"{args.out}/bench_summary.json", "w") as fh:
        json.dump(summary, fh, indent=2)
    print(open(f"{args.out}/results.md").read())
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
