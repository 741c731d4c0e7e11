"""A picture of a long recording's timeline: ``ser-predict --timeline FILE --plot out.png``.

The same picture as the web page's timeline strip: speech segments coloured by emotion along
the time axis, silence hatched grey, a legend; below it, each segment's probabilities as
stacked bars over time. matplotlib is optional (``pip install 'ser[plot]'``) and imported
only when a plot is drawn, so the service and the rest of ser-predict never load it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

#: One colour per emotion, shared with the web page (``EMOTION_COLOURS`` in
#: ``service/static/app.js``; a test checks they agree). The Okabe-Ito palette: its seven
#: colours stay apart for the common colour-vision deficiencies, and none is grey, which
#: marks silence.
EMOTION_COLOURS: dict[str, str] = {
    "angry": "#D55E00",
    "disgust": "#009E73",
    "fear": "#CC79A7",
    "happy": "#F0E442",
    "neutral": "#56B4E9",
    "sad": "#0072B2",
    "surprise": "#E69F00",
}
#: For a label outside the table (the contract allows none today).
OTHER_COLOUR = "#555555"
SILENCE_COLOUR = "#D9DCE3"
SILENCE_EDGE = "#9AA1AF"

INSTALL_HINT = "--plot needs matplotlib: pip install 'ser[plot]'"


class PlotUnavailableError(RuntimeError):
    """matplotlib is not installed."""


def emotion_colour(label: str) -> str:
    """The ``#RRGGBB`` colour of ``label``."""
    return EMOTION_COLOURS.get(label, OTHER_COLOUR)


def require_matplotlib() -> None:
    """Raise :class:`PlotUnavailableError` with the install hint when matplotlib is missing.

    Called before any audio is read, so a missing extra fails at once, not after the work.
    """
    try:
        import matplotlib  # noqa: F401
    except ImportError as exc:
        raise PlotUnavailableError(INSTALL_HINT) from exc


def silences(segments: Sequence[Mapping[str, Any]], duration_s: float) -> list[tuple[float, float]]:
    """The ``(start, end)`` stretches of ``[0, duration_s]`` outside the speech segments.

    Parameters
    ----------
    segments : sequence of mapping
        Timeline segments with ``start`` and ``end`` in seconds, ordered and non-overlapping.
    duration_s : float
        Length of the recording in seconds.

    Returns
    -------
    list of (float, float)
        The gaps before, between and after the segments, in order; empty ones left out.
    """
    gaps = []
    cursor = 0.0
    for segment in segments:
        if segment["start"] > cursor:
            gaps.append((cursor, float(segment["start"])))
        cursor = max(cursor, float(segment["end"]))
    if duration_s > cursor:
        gaps.append((cursor, float(duration_s)))
    return gaps


def _text_colour(hex_colour: str) -> str:
    # Dark text on the light colours (yellow, sky blue, orange), white on the dark ones.
    r, g, b = (int(hex_colour[i : i + 2], 16) / 255 for i in (1, 3, 5))
    return "#1D2330" if 0.2126 * r + 0.7152 * g + 0.0722 * b > 0.5 else "white"


def plot_timeline(
    timeline: Mapping[str, Any],
    out: str | Path,
    *,
    labels: Sequence[str] | None = None,
    title: str | None = None,
) -> Path:
    """Draw ``timeline`` (as ``/predict?timeline=true`` answers it) to a PNG file.

    Parameters
    ----------
    timeline : mapping
        ``{"segments": [{start, end, label, confidence, probabilities}], "summary":
        {duration_s, speech_s, segments, dominant, distribution}}``.
    out : str or Path
        The image to write; its suffix chooses the format (``.png``, ``.svg``, ``.pdf``).
    labels : sequence of str or None
        The model's labels, stacking order of the probability bars; by default the summary's
        distribution's keys.
    title : str or None
        Above the picture (the file name, say); the summary line follows it.

    Returns
    -------
    Path
        ``out``.

    Raises
    ------
    PlotUnavailableError
        matplotlib is not installed.
    """
    require_matplotlib()
    # The Agg canvas on a Figure of our own, not pyplot: no display, no GUI toolkit, no global
    # figure state to leak between calls.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    segments = list(timeline["segments"])
    summary = timeline["summary"]
    duration = float(summary["duration_s"]) or 1e-3
    labels = list(labels or summary["distribution"])
    gaps = silences(segments, duration)

    fig = Figure(figsize=(11, 4.6), dpi=110)
    FigureCanvasAgg(fig)
    strip, bars = fig.subplots(
        2, 1, sharex=True, gridspec_kw={"height_ratios": [1, 2.4], "hspace": 0.12}
    )
    silence_style: dict[str, Any] = {
        "facecolor": SILENCE_COLOUR,
        "edgecolor": SILENCE_EDGE,
        "hatch": "///",
        "linewidth": 0,
    }
    strip.broken_barh([(a, b - a) for a, b in gaps], (0, 1), **silence_style)
    names = []  # (text, start, end): each segment's emotion, kept where it fits
    for s in segments:
        start, end, colour = float(s["start"]), float(s["end"]), emotion_colour(s["label"])
        strip.broken_barh(
            [(start, end - start)], (0, 1), facecolor=colour, edgecolor="white", linewidth=1
        )
        names.append(
            (
                strip.text(
                    (start + end) / 2,
                    0.5,
                    s["label"],
                    ha="center",
                    va="center",
                    fontsize=8.5,
                    color=_text_colour(colour),
                ),
                start,
                end,
            )
        )
    strip.set_ylim(0, 1)
    strip.set_yticks([])
    strip.set_xlim(0, duration)
    for side in ("top", "right", "left"):
        strip.spines[side].set_visible(False)
    strip.tick_params(axis="x", labelbottom=False)

    for a, b in gaps:
        bars.axvspan(a, b, alpha=0.35, zorder=0, **silence_style)
    bottoms = [0.0] * len(segments)
    for label in labels:
        heights = [float(s["probabilities"].get(label, 0.0)) for s in segments]
        bars.bar(
            [float(s["start"]) for s in segments],
            heights,
            width=[float(s["end"]) - float(s["start"]) for s in segments],
            bottom=bottoms,
            align="edge",
            color=emotion_colour(label),
            edgecolor="white",
            linewidth=0.4,
        )
        bottoms = [b + h for b, h in zip(bottoms, heights, strict=True)]
    bars.set_ylim(0, 1)
    bars.set_ylabel("probability")
    bars.set_xlabel("time (s)")
    for side in ("top", "right"):
        bars.spines[side].set_visible(False)

    handles = [Patch(facecolor=emotion_colour(label), label=label) for label in labels]
    handles.append(Patch(label="silence", **silence_style))
    fig.legend(handles=handles, loc="center right", frameon=False, title="emotion")
    if summary["dominant"] is None:
        line = f"no speech found in {summary['duration_s']:.1f} s"
    else:
        line = (
            f"{summary['segments']} speech segments, {summary['speech_s']:.1f} s of speech "
            f"in {summary['duration_s']:.1f} s; dominant: {summary['dominant']}"
        )
    fig.suptitle(f"{title}\n{line}" if title else line, fontsize=11)
    fig.subplots_adjust(left=0.06, right=0.86, top=0.84 if title else 0.9, bottom=0.12)
    # A name is kept only when it fits inside its segment with a little margin, measured
    # in pixels now that the layout is final; the legend and the bars name every colour.
    renderer = fig.canvas.get_renderer()  # type: ignore[attr-defined]
    for text, start, end in names:
        (left, _), (right, _) = strip.transData.transform([(start, 0), (end, 0)])
        if text.get_window_extent(renderer).width + 6 > right - left:
            text.remove()
    out = Path(out)
    fig.savefig(out)
    return out
