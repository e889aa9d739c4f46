"""Reading the JSON files that travel with models (configs, preset and export metadata).

One reader, so that every damaged file gets the same named error instead of
a bare `json.JSONDecodeError` that names no file.
"""

import json


def read_json_object(path, what):
    """The JSON object (dict) stored in the file `path`.

    Args:
        path: str, the file.
        what: str, what the file should be, for the message (e.g.
            `"a transformers config"`).

    Raises:
        ValueError: if the file is not UTF-8 JSON or holds something other
            than an object; the message names the file, what was expected and
            what was received (the byte count, or the JSON type).
    """
    with open(path, "rb") as f:
        content = f.read()
    try:
        value = json.loads(content)
    except ValueError as error:  # json.JSONDecodeError and UnicodeDecodeError
        raise ValueError(
            f"{path!r} is not {what}: expected a JSON object. "
            f"Received: {len(content)} bytes that do not parse as JSON ({error})"
        ) from None
    if not isinstance(value, dict):
        raise ValueError(
            f"{path!r} is not {what}: expected a JSON object. Received: a JSON {type(value).__name__}"
        )
    return value
