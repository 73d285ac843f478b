"""Image loading for enrolment photos and camera frames: RGB arrays, bombs and corrupt files refused."""

from __future__ import annotations

import io
import warnings
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image, ImageOps

# A gate camera or an enrolment photo never needs more; anything larger is refused before decoding
# because a few-kilobyte PNG can declare a size that would take gigabytes to decode.
MAX_PIXELS = 40_000_000
# Only plain raster formats: PIL's other plugins (EPS runs Ghostscript, among others) are attack surface.
SAFE_FORMATS = ("JPEG", "PNG", "WEBP", "BMP", "TIFF", "PPM")


class ImageError(ValueError):
    """An image that cannot be read or used (missing, corrupt, too large, wrong shape)."""


def load_image_rgb(path: str | Path) -> np.ndarray:
    """Return the image at ``path`` as an RGB uint8 array of shape (H, W, 3)."""
    return _decode(path, str(path))


def load_image_bytes_rgb(data: bytes, name: str, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Like load_image_rgb, for an uploaded file held in memory; ``name`` is only used in messages."""
    return _decode(io.BytesIO(data), name, max_pixels)


def _decode(source: str | Path | BinaryIO, label: str, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    try:
        # Local filter rather than lowering Image.MAX_IMAGE_PIXELS process-wide: our own check below
        # refuses large images, so PIL's warning would only duplicate it (and be an error under pytest).
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(source, formats=SAFE_FORMATS) as image:
                width, height = image.size  # header only; nothing decoded yet
                if width * height > max_pixels:
                    raise ImageError(
                        f"cannot read image {label}: {width}x{height} is more than "
                        f"{max_pixels / 1_000_000:g} megapixels"
                    )
                # Phone photos store rotation in EXIF; without this an enrolment selfie lies on its side.
                image = ImageOps.exif_transpose(image)
                return np.array(_to_rgb(image), dtype=np.uint8)
    except ImageError:
        raise
    except FileNotFoundError:
        raise ImageError(f"cannot read image {label}: no such file") from None
    except Image.UnidentifiedImageError:
        raise ImageError(
            f"cannot read image {label}: not a photo in a supported format ({', '.join(SAFE_FORMATS)})"
        ) from None
    except Image.DecompressionBombError as exc:  # far past our limit: PIL refused it while opening
        raise ImageError(f"cannot read image {label}: more than {max_pixels // 1_000_000} megapixels ({exc})") from exc
    # PIL reports corrupt and truncated data through all of these, depending on the format plugin.
    except (OSError, ValueError, SyntaxError, EOFError) as exc:
        raise ImageError(f"cannot read image {label}: {exc}") from exc


def _to_rgb(image: Image.Image) -> Image.Image:
    if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        # Transparent pixels carry arbitrary colour (often black); put them on white like a viewer does.
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")
