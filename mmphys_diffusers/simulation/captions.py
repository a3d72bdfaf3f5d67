"""Captions generated from the simulated scene (grammar documented in docs/simulation.md).

Every caption names each object's colour and type, the number of objects and
what the scene does (drop, throw, collision, ramp, several objects), with bounce
counts and outcomes read from the simulation, never sampled independently.
"""

from __future__ import annotations

import math

import numpy as np

from .world import SceneSpec, Trajectory

NUMBER_WORDS = ("no", "one", "two", "three", "four", "five", "six", "seven", "eight")
# A floor contact counts as a bounce when the rebound would rise at least this high.
MIN_BOUNCE_HEIGHT_M = 0.2
MIN_IMPACT_SPEED_M_S = 1.0
STOP_SPEED_M_S = 0.3


# Every fixed word of the templates below; `caption_vocabulary` adds colours, kinds and numbers.
TEMPLATE_WORDS = (
    "a an the and of in to at on onto into through toward then afterwards without is "
    "drop drops fall falls lands bounces bouncing once twice times floor air arc view leaves thrown "
    "left right collide approach each other moves moving slides sliding rolls rolling stops keeps back "
    "heavier lighter rest down out ramp gentle steep objects passes front balls boxes ( ) , . : ;"
).split()


def caption_vocabulary() -> list[str]:
    """Every word `caption_scene` can write (the closed vocabulary of a word-level tokenizer)."""
    from .world import PALETTE

    return sorted({*TEMPLATE_WORDS, *PALETTE, "ball", "box", *NUMBER_WORDS})


def _number(n: int) -> str:
    return NUMBER_WORDS[n] if n < len(NUMBER_WORDS) else str(n)


def _times(n: int) -> str:
    return {1: "once", 2: "twice"}.get(n, f"{_number(n)} times")


def _join(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _a(word: str) -> str:
    """Indefinite article for the following word."""
    return "an" if word[:1].lower() in "aeiou" else "a"


def _name(scene: SceneSpec, oid: int) -> str:
    o = scene.objects[oid - 1]
    return f"{o.colour} {o.kind}"


def floor_impacts(scene: SceneSpec, traj: Trajectory, oid: int) -> tuple[int, int]:
    """(impacts, visible bounces) of object ``oid`` (1-based) on the floor during the clip."""
    min_out = math.sqrt(2 * scene.gravity_m_s2 * MIN_BOUNCE_HEIGHT_M)
    impacts = bounces = 0
    for e in traj.events:
        if e["type"] == "bounce" and e["object"] == oid and e.get("surface") == "floor" and e["speed_in_m_s"] > MIN_IMPACT_SPEED_M_S:
            impacts += 1
            bounces += e.get("speed_out_m_s", 0.0) >= min_out
    return impacts, bounces


def visible_ids(instances_last: np.ndarray) -> set[int]:
    return {int(v) for v in np.unique(instances_last) if v}


def _fall_phrase(scene, traj, oid) -> str:
    impacts, bounces = floor_impacts(scene, traj, oid)
    if impacts == 0:
        return "falls toward the floor"
    if bounces == 0:
        return "lands on the floor without bouncing"
    return f"bounces {_times(bounces)}"


def caption_scene(scene: SceneSpec, traj: Trajectory, instances: np.ndarray, occlusions) -> str:
    """One-sentence (two at most) description of the clip."""
    family = scene.family
    seen_at_end = visible_ids(instances[-1])
    if family == "free_fall":
        if len(scene.objects) == 1:
            phrase = _fall_phrase(scene, traj, 1)
            if phrase.startswith("bounces"):
                return f"{_a(_name(scene, 1)).capitalize()} {_name(scene, 1)} drops onto the floor and {phrase}."
            return f"{_a(_name(scene, 1)).capitalize()} {_name(scene, 1)} {phrase}."
        colours = [o.colour for o in scene.objects]
        parts = [f"the {_name(scene, k + 1)} {_fall_phrase(scene, traj, k + 1)}" for k in range(len(colours))]
        intro = f"{_number(len(colours)).capitalize()} balls, " + _join([f"{_a(c)} {c} one" for c in colours]) + ", drop onto the floor"
        return f"{intro}; {_join(parts)}."
    if family == "projectile":
        name = _name(scene, 1)
        impacts, bounces = floor_impacts(scene, traj, 1)
        text = f"{_a(name).capitalize()} {name} is thrown to the {scene.params['direction']} in an arc"
        if impacts == 0:
            text += " through the air"
        elif bounces == 0:
            text += ", lands on the floor and rolls"
        else:
            text += f", lands on the floor and bounces {_times(bounces)}"
        if 1 not in seen_at_end:
            text += ", then leaves the view"
        return text + "."
    if family == "collision":
        a, b = scene.objects
        ma, mb = a.mass_kg, b.mass_kg
        weight = ("heavier ", "lighter ") if ma > 1.3 * mb else ("lighter ", "heavier ") if mb > 1.3 * ma else ("", "")
        vb0 = traj.velocity_m_s[0, 1, 0]
        target = "at rest" if abs(vb0) < STOP_SPEED_M_S else "sliding left" if a.kind == "box" else "moving left"
        verb = "slides" if a.kind == "box" else "moves"
        text = (
            f"Two boxes collide: {_a(weight[0] + a.colour)} {weight[0]}{a.colour} box {verb} right into {_a(weight[1] + b.colour)} {weight[1]}{b.colour} box {target}"
            if a.kind == "box"
            else f"Two balls collide: {_a(weight[0] + a.colour)} {weight[0]}{a.colour} ball {verb} right into {_a(weight[1] + b.colour)} {weight[1]}{b.colour} ball {target}"
        )
        hit = any(e["type"] == "collision" for e in traj.events)
        if not hit:
            return text.replace("collide: ", "approach each other: ").replace(" into ", " toward ") + "."

        def outcome(i: int) -> str:
            vx = traj.velocity_m_s[-1, i, 0]
            return "stops" if abs(vx) < STOP_SPEED_M_S else "moves right" if vx > 0 else "bounces back to the left"

        return f"{text}; afterwards the {a.colour} {a.kind} {outcome(0)} and the {b.colour} {b.kind} {outcome(1)}."
    if family == "ramp":
        o = scene.objects[0]
        slope = scene.params["slope_deg"]
        steep = "gentle " if slope < 22 else "steep " if slope > 28 else ""
        verb = "slides" if o.kind == "box" else "rolls"
        text = f"{_a(o.colour).capitalize()} {o.colour} {o.kind} {verb} down a {steep}ramp"
        ramp = scene.ramps[0]
        foot_x = ramp.vertices_m[1][0] if scene.params["direction"] == "right" else ramp.vertices_m[2][0]
        past_foot = (traj.position_m[-1, 0, 0] - foot_x) * (1 if scene.params["direction"] == "right" else -1) > 0
        if 1 not in seen_at_end:
            text += " and out of view"
        elif past_foot:
            speed = float(np.hypot(*traj.velocity_m_s[-1, 0]))
            text += " onto the floor" + (" and stops" if speed < STOP_SPEED_M_S else f" and keeps {'sliding' if o.kind == 'box' else 'rolling'}")
        return text + "."
    if family == "multi_object":
        kinds = [o.kind for o in scene.objects]
        counts = [f"{_number(kinds.count(k))} {k}{'s' if kinds.count(k) > 1 else ''}" for k in ("ball", "box") if k in kinds]
        counts = [c.replace("boxs", "boxes") for c in counts]
        names = [f"{_a(_name(scene, k + 1))} {_name(scene, k + 1)}" for k in range(len(kinds))]
        text = f"{_number(len(kinds)).capitalize()} objects ({_join(counts)}) fall onto the floor: {_join(names)}"
        if occlusions:
            front, back = occlusions[0]
            text += f"; the {_name(scene, front)} passes in front of the {_name(scene, back)}"
        return text + "."
    raise KeyError(family)
