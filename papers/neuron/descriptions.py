"""Side information written from the same records as the synthesiser (classes.py): for every
class and level, `count` distinct descriptions built from templates and synonym lists.

- Spatial levels say which body part moves and how: coarse (~11 words: part, motion, how
  often), medium (~15: adds direction and extent), fine (~24: the main joint's and the distal
  joint's angles from the `Primitive` record).
- Temporal levels follow the class's three phases (`PATTERNS`) cumulatively: temporal1 =
  phase 1, temporal2 = phases 1-2, temporal3 = phases 1-3. The phase clauses are the same
  words at every temporal level, so temporal k+1 literally extends temporal k.

Everything is deterministic (variant i picks template i and synonym i mod n). The words come
only from the part, primitive and pattern records, so an unseen class, a new combination,
still gets text that names its part, motion and phases. Two classes that differ only in
their pattern share phase 1 ("move") and therefore their temporal1 text; every other level
tells all 48 classes apart.
"""

from __future__ import annotations

from dataclasses import dataclass

from papers.neuron.classes import PARTS, PRIMITIVES, ActionClass
from papers.neuron.config import LEVELS

SPATIAL_LEVELS = LEVELS[:3]
TEMPORAL_LEVELS = LEVELS[3:]


@dataclass(frozen=True)
class Motion:
    """How one joint rotation reads for one kind of body part."""

    acts: tuple[str, ...]  # what the person does ("{part}" = the part's noun phrase)
    verbs: tuple[str, ...]  # the same without direction, completed by `how`
    how: tuple[str, ...]  # direction and extent
    main_verb: str  # the main joint (shoulder/hip/spine) rotating, singular
    distal_verb: str  # the distal joint (elbow/knee/neck) rotating, singular
    move: tuple[str, ...]  # phase clauses; "{part} verb ..." or a fixed subject
    hold: tuple[str, ...]
    back: tuple[str, ...]
    result: str  # a gerund phrase for the fine level ("{limb}" = arm/leg noun)


# (rotation, kind of part) -> wording. Rotations are those named by classes.PRIMITIVES.
MOTIONS: dict[tuple[str, str], Motion] = {
    ("flex_forward", "arm"): Motion(
        acts=("raises {part} forward", "lifts {part} up in front", "brings {part} forward and up"),
        verbs=("raises {part}", "lifts {part}", "brings {part}"),
        how=("forward and up above the shoulder", "straight ahead to above the head", "up in front to a high position"),
        main_verb="flexes forward", distal_verb="bends",
        move=("{part} rises forward", "{part} lifts up in front of the body"),
        hold=("{part} stays raised", "{part} is held up in front"),
        back=("{part} lowers back to the side", "{part} drops back down to rest"),
        result="lifting {limb}",
    ),
    ("flex_forward", "leg"): Motion(
        acts=("raises {part} forward", "lifts {part} up in front", "brings {part} up in a high step"),
        verbs=("raises {part}", "lifts {part}", "swings {part}"),
        how=("forward and up to hip height", "straight ahead with the thigh high", "up in front, the foot off the floor"),
        main_verb="flexes forward", distal_verb="bends",
        move=("{part} swings forward and up", "{part} lifts up in front"),
        hold=("{part} stays lifted", "{part} is held up in front"),
        back=("{part} lowers back to the floor", "{part} comes back down to standing"),
        result="lifting {limb}",
    ),
    ("flex_forward", "torso"): Motion(
        acts=("bends {part} forward", "bows {part} forward", "leans {part} forward and down"),
        verbs=("bends {part}", "bows {part}", "folds {part}"),
        how=("forward and down from the waist", "deeply toward the floor", "ahead into a low bow"),
        main_verb="flexes forward", distal_verb="bends",
        move=("{part} bends forward", "{part} bows toward the floor"),
        hold=("{part} stays bent over", "{part} is held in the bow"),
        back=("{part} straightens back up", "{part} returns to upright"),
        result="folding the trunk",
    ),
    ("abduct", "arm"): Motion(
        acts=("swings {part} out to the side", "lifts {part} sideways", "spreads {part} out sideways"),
        verbs=("swings {part}", "lifts {part}", "spreads {part}"),
        how=("sideways up to shoulder level", "away from the body to the side", "out laterally to shoulder height"),
        main_verb="abducts sideways", distal_verb="bends",
        move=("{part} swings out to the side", "{part} opens out sideways"),
        hold=("{part} stays out to the side", "{part} is held out sideways"),
        back=("{part} comes back to the side of the body", "{part} drops back in to rest"),
        result="spreading {limb} out",
    ),
    ("abduct", "leg"): Motion(
        acts=("swings {part} out to the side", "lifts {part} sideways", "moves {part} out from the body"),
        verbs=("swings {part}", "lifts {part}", "moves {part}"),
        how=("sideways away from the other leg", "out to the side of the hips", "laterally with the foot raised"),
        main_verb="abducts sideways", distal_verb="bends",
        move=("{part} swings out to the side", "{part} lifts out sideways"),
        hold=("{part} stays out to the side", "{part} is held out sideways"),
        back=("{part} comes back under the body", "{part} returns beside the other leg"),
        result="opening {limb} sideways",
    ),
    ("abduct", "torso"): Motion(
        acts=("leans {part} to the side", "tilts {part} sideways", "bends {part} over to one side"),
        verbs=("leans {part}", "tilts {part}", "bends {part}"),
        how=("sideways over the hips", "to one side from the waist", "laterally toward one side"),
        main_verb="bends sideways", distal_verb="bends",
        move=("{part} tilts to the side", "{part} leans over sideways"),
        hold=("{part} stays tilted", "{part} is held leaning sideways"),
        back=("{part} comes back to upright", "{part} straightens up again"),
        result="tilting the trunk",
    ),
    ("flex_distal", "arm"): Motion(
        acts=("bends {part} at the elbow", "curls {part} up", "folds {part} at the elbow"),
        verbs=("bends {part}", "curls {part}", "folds {part}"),
        how=("at the elbow, the hand rising to the shoulder", "up, the forearm folding upward", "so the hand comes toward the chest"),
        main_verb="flexes", distal_verb="bends",
        move=("{part} bends at the elbow", "{part} curls up"),
        hold=("{part} stays bent", "{part} is held curled"),
        back=("{part} straightens out again", "{part} extends back down"),
        result="curling {limb}",
    ),
    ("flex_distal", "leg"): Motion(
        acts=("bends {part} at the knee", "kicks {part} back at the knee", "folds {part} at the knee"),
        verbs=("bends {part}", "kicks {part} back", "folds {part}"),
        how=("at the knee, the heel rising behind", "so the lower leg folds backward", "so the foot lifts up behind"),
        main_verb="flexes", distal_verb="bends",
        move=("{part} bends at the knee", "{part} folds back at the knee"),
        hold=("{part} stays bent", "{part} is held folded"),
        back=("{part} straightens out again", "{part} extends back down to the floor"),
        result="folding {limb}",
    ),
    ("flex_distal", "torso"): Motion(  # the synthesiser's torso "bend" is a squat (knees β, trunk α)
        acts=("squats down by bending the knees", "lowers {part} into a squat", "crouches down on bent knees"),
        verbs=("squats", "crouches", "sinks"),
        how=("down with the knees bent deeply", "until the hips drop toward the heels", "low while the trunk leans slightly forward"),
        main_verb="leans forward", distal_verb="bends",
        move=("the body sinks into a squat", "the knees bend and the hips drop"),
        hold=("the body stays low in the squat", "the squat is held"),
        back=("the body rises back to standing", "the knees straighten to stand up"),
        result="lowering the body",
    ),
    ("axial", "arm"): Motion(
        acts=("twists {part}", "rotates {part} at the shoulder", "turns {part} about the long axis"),
        verbs=("twists {part}", "rotates {part}", "turns {part}"),
        how=("inward around the long axis", "so the forearm and hand roll over", "with the upper arm turning in place"),
        main_verb="rotates", distal_verb="bends",
        move=("{part} twists around", "{part} rotates inward"),
        hold=("{part} stays twisted", "{part} is held rotated"),
        back=("{part} untwists back to rest", "{part} turns back to neutral"),
        result="twisting {limb}",
    ),
    ("axial", "leg"): Motion(
        acts=("twists {part}", "rotates {part} at the hip", "turns {part} so the foot points in"),
        verbs=("twists {part}", "rotates {part}", "turns {part}"),
        how=("inward around the long axis", "so the foot points across", "with the thigh turning in place"),
        main_verb="rotates", distal_verb="bends",
        move=("{part} twists inward", "{part} rotates at the hip"),
        hold=("{part} stays turned", "{part} is held rotated"),
        back=("{part} turns back to face forward", "{part} untwists to rest"),
        result="turning {limb}",
    ),
    ("axial", "torso"): Motion(
        acts=("twists {part}", "turns {part} around", "rotates {part} to one side"),
        verbs=("twists {part}", "turns {part}", "rotates {part}"),
        how=("around the vertical axis at the waist", "so the shoulders face one side", "sideways while the hips stay still"),
        main_verb="twists", distal_verb="turns",
        move=("{part} twists around", "{part} turns to one side"),
        hold=("{part} stays turned", "{part} is held twisted"),
        back=("{part} turns back to face forward", "{part} untwists to the front"),
        result="turning the trunk",
    ),
}

# The synthesiser scales the spine's share of a torso bow (0.6) and lean (0.5): the fine text
# states the angle the trunk really reaches.
TORSO_SCALE = {"flex_forward": 0.6, "abduct": 0.5}

# kind of part -> (main joint, distal joint, limb noun)
JOINTS = {"arm": ("shoulder", "elbow", "arm"), "leg": ("hip", "knee", "leg"),
          "torso": ("spine", "neck", "trunk")}

SUBJECTS = ("the person", "the subject", "someone", "a person", "the actor", "the performer",
            "an individual", "the participant", "this person", "a standing person")

COUNT_WORDS = {
    1: ("once", "a single time", "one time", "just once", "only once"),
    2: ("twice", "two times", "twice in a row", "two times over", "twice over"),
}

# (opening, second connector, third connector) of the cumulative temporal descriptions
TEMPORAL_FRAMES = (
    ("First,", "then", "and finally"),
    ("To begin,", "next", "and at the end"),
    ("At the start,", "after that", "and lastly"),
    ("Initially,", "afterwards", "and in the end"),
    ("In the opening phase,", "in the middle phase", "and in the closing phase"),
    ("The action starts as", "then", "and it ends as"),
    ("Early in the action,", "later", "and at the close"),
    ("At first,", "subsequently", "and to finish"),
    ("The movement opens as", "then", "and it closes as"),
    ("In phase one,", "in phase two", "and in phase three"),
)

_IRREGULAR = {"is": "are", "has": "have", "goes": "go", "does": "do"}


def _plural_verb(word: str) -> str:
    if word in _IRREGULAR:
        return _IRREGULAR[word]
    if word.endswith(("sses", "xes", "shes", "ches", "zes")):
        return word[:-2]
    return word[:-1] if word.endswith("s") else word


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def _num(x: float) -> str:
    return f"{x:g}"


@dataclass(frozen=True)
class _Part:
    noun: str  # "the left arm", "both arms", "the upper body"
    main: str  # "the left shoulder", "both shoulders", "the spine"
    distal: str
    limb: str  # "the arm", "both arms", "the trunk"
    plural: bool
    kind: str


def _part(cls: ActionClass) -> _Part:
    phrase = PARTS[cls.part][1]
    kind = "arm" if "arm" in cls.part else "leg" if "leg" in cls.part else "torso"
    main, distal, limb = JOINTS[kind]
    if kind == "torso":
        if PRIMITIVES[cls.primitive].rotation == "flex_distal":  # a squat: the knees do the bending
            distal = "each knee"
        return _Part(f"the {phrase}", f"the {main}", f"the {distal}", f"the {limb}", False, kind) \
            if distal == "neck" else _Part(f"the {phrase}", f"the {main}", distal, f"the {limb}", False, kind)
    side = phrase.split()[0]
    if side == "both":
        return _Part(phrase, f"both {main}s", f"both {distal}s", f"both {limb}s", True, kind)
    return _Part(f"the {phrase}", f"the {side} {main}", f"the {side} {distal}", f"the {limb}",
                 False, kind)


def _motion(cls: ActionClass) -> Motion:
    rotation = PRIMITIVES[cls.primitive].rotation
    kind = _part(cls).kind
    if (rotation, kind) not in MOTIONS:
        raise KeyError(f"no wording for rotation {rotation!r} of a {kind}: add it to "
                       "papers.neuron.descriptions.MOTIONS")
    return MOTIONS[rotation, kind]


def _verb(subject_plural: bool, clause: str) -> str:
    """Agree the first word of `clause` (a singular verb) with the subject."""
    if not subject_plural:
        return clause
    first, _, rest = clause.partition(" ")
    return f"{_plural_verb(first)} {rest}".rstrip()


def _subject_clause(template: str, part: _Part, pronoun: bool) -> str:
    """A phase clause: "{part} verb ..." with the part (or it/they) as subject."""
    if not template.startswith("{part} "):
        return template
    verb_phrase = _verb(part.plural, template[len("{part} "):])
    subject = ("they" if part.plural else "it") if pronoun else part.noun
    return f"{subject} {verb_phrase}"


def _moves(cls: ActionClass) -> int:
    return sum(name == "move" for name, _ in cls.phases)


def _count(cls: ActionClass, i: int) -> str:
    n = _moves(cls)
    words = COUNT_WORDS.get(n, (f"{n} times", f"{n} times over", f"{n} times in a row"))
    return words[i % len(words)]


def _extent(angle: float) -> str:
    return "large" if angle >= 100 else "wide" if angle >= 60 else "moderate" if angle >= 30 else "small"


def _joint_clauses(cls: ActionClass, i: int) -> tuple[str, str]:
    """(leading joint clause, other joint clause) with the record's angles."""
    prim = PRIMITIVES[cls.primitive]
    part, motion = _part(cls), _motion(cls)
    angle = prim.angle_deg * (TORSO_SCALE.get(prim.rotation, 1.0) if part.kind == "torso" else 1.0)
    a, s = _num(angle), _num(prim.secondary_deg)
    about = ("about", "roughly", "around")[i % 3]
    if angle >= prim.secondary_deg:
        lead = f"{part.main} {_verb(part.plural, motion.main_verb)} to {about} {a} degrees"
        if prim.secondary_deg == 0:
            other = f"{part.distal} {_verb(part.plural, 'stays fully straight')}"
        elif prim.secondary_deg <= 15:
            other = f"{part.distal} {_verb(part.plural, 'stays nearly straight')}, bent only {s} degrees"
        else:
            other = f"{part.distal} {_verb(part.plural, motion.distal_verb)} {about} {s} degrees"
    else:
        lead = f"{part.distal} {_verb(part.plural, motion.distal_verb)} to {about} {s} degrees"
        other = f"{part.main} {_verb(part.plural, 'moves')} only {a} degrees"
    return lead, other


def _spatial(cls: ActionClass, level: str, i: int) -> str:
    part, motion = _part(cls), _motion(cls)
    subj = SUBJECTS[i % len(SUBJECTS)]
    act = motion.acts[i % len(motion.acts)].format(part=part.noun)
    cnt = _count(cls, i)
    if level == "coarse":
        frames = (
            "{S} {act} {cnt} while standing.",
            "In this action, {s} {act} {cnt}.",
            "{S} {act} {cnt}, all else still.",
            "Here {s} {act} {cnt}.",
            "{S} {act} {cnt}, feet planted.",
            "Shown: {s} {act} {cnt}.",
            "{S} {act} {cnt}, otherwise still.",
            "While standing, {s} {act} {cnt}.",
            "In this recording {s} {act} {cnt}.",
            "{S} {act} {cnt}, nothing more.",
        )
        return frames[i].format(S=_cap(subj), s=subj, act=act, cnt=cnt)
    prim = PRIMITIVES[cls.primitive]
    verb = motion.verbs[i % len(motion.verbs)].format(part=part.noun)
    how = motion.how[(i + i // 3) % len(motion.how)]
    ext = _extent(max(prim.angle_deg, prim.secondary_deg))
    if level == "medium":
        frames = (
            "{S} {verb} {how}, {cnt}.",
            "In a {ext} motion, {s} {verb} {how}, {cnt}.",
            "{S} {verb} {how}, a {ext} movement done {cnt}.",
            "Doing it {cnt}, {s} {verb} {how}.",
            "{S} {verb} {how}; this happens {cnt}.",
            "With a {ext} range, {s} {verb} {how}, {cnt}.",
            "{S} {verb} {how} in a {ext} sweep, {cnt}.",
            "A {ext} movement: {s} {verb} {how}, {cnt}.",
            "{S} {verb} {how}; it is done {cnt}.",
            "Done {cnt}: {s} {verb} {how}.",
        )
        return frames[i].format(S=_cap(subj), s=subj, verb=verb, how=how, cnt=cnt, ext=ext)
    if level == "fine":
        lead, other = _joint_clauses(cls, i)
        res = motion.result.format(limb=part.limb)
        frames = (
            "{Lead} while {other}, {res} {cnt}.",
            "{S} {act} {cnt}: {lead}, and {other}.",
            "In this action {lead} and {other}, {res} {cnt}.",
            "{Lead}, {other}; {s} does this {cnt}.",
            "{Res} {cnt}, {s} moves so that {lead} while {other}.",
            "{Lead} as {other}, which {s} performs {cnt}.",
            "{S} moves {cnt}: {lead}, while {other}.",
            "Performed {cnt}, the motion is this: {lead} and {other}.",
            "{Lead}, and meanwhile {other}; this happens {cnt}.",
            "{S} is {res} {cnt}, so {lead} while {other}.",
        )
        return frames[i].format(S=_cap(subj), s=subj, act=act, cnt=cnt, lead=lead,
                                Lead=_cap(lead), other=other, res=res, Res=_cap(res))
    raise ValueError(f"not a spatial level: {level!r}")


def phase_clauses(cls: ActionClass, i: int) -> list[str]:
    """The clause of each of the class's phases in variant i (the same words at every
    temporal level)."""
    part, motion = _part(cls), _motion(cls)
    out, moved = [], False
    for k, (name, fraction) in enumerate(cls.phases):
        options = {"move": motion.move, "hold": motion.hold, "return": motion.back}[name]
        clause = _subject_clause(options[(i + k) % len(options)], part, pronoun=k > 0 and i % 2 == 1)
        if name == "move":
            if 0 < fraction < 1:
                clause += " part of the way"
            if moved:
                clause += " again"
            moved = True
        out.append(clause)
    return out


def _temporal(cls: ActionClass, level: str, i: int) -> str:
    phases = int(level[len("temporal"):])
    clauses = phase_clauses(cls, i)[:phases]
    opening, second, third = TEMPORAL_FRAMES[i % len(TEMPORAL_FRAMES)]
    text = f"{opening} {clauses[0]}"
    for k, clause in enumerate(clauses[1:], start=1):
        text += f", {second if k < len(cls.phases) - 1 else third} {clause}"
    return text + "."


def describe(cls: ActionClass, level: str, count: int = 10) -> list[str]:
    """`count` distinct descriptions of `cls` at `level` (one of config.LEVELS)."""
    if level not in LEVELS:
        raise ValueError(f"unknown text level {level!r}; expected one of {LEVELS}")
    limit = len(SUBJECTS) if level in SPATIAL_LEVELS else len(TEMPORAL_FRAMES)
    if not 1 <= count <= limit:
        raise ValueError(f"{level}: between 1 and {limit} descriptions per class, not {count}")
    make = _spatial if level in SPATIAL_LEVELS else _temporal
    texts = [make(cls, level, i) for i in range(count)]
    assert len(set(texts)) == count, (cls.name, level, texts)
    return texts


def all_descriptions(classes: list[ActionClass], count: int = 10) -> dict[str, list[list[str]]]:
    """level -> class (in the order given) -> `count` descriptions."""
    return {level: [describe(c, level, count) for c in classes] for level in LEVELS}
