"""Reading the train stage's state files (``model.pt``, ``resume.pt``) without running code from them.

``torch.load`` unpickles, and a pickle can call any function while it loads. Every state file is therefore read with
``weights_only=True``, PyTorch's restricted unpickler (tensors, numbers, strings, ``None``, lists, tuples, dicts): a
planted or tampered file is refused, not executed. The writers keep what they save within those types.
"""

from __future__ import annotations

import pickle

import torch

from privfair.core.errors import CheckpointError, PrivfairError


def load_state_file(path, map_location, error: type[PrivfairError] = CheckpointError) -> dict:
    """Load a state file with ``weights_only=True``, turning every failure into one error that names the file.

    Args:
        path: the file written by ``torch.save``.
        map_location: where the loaded tensors go (``torch.load``'s argument).
        error: the exception class to raise (``CheckpointError`` by default).

    Returns:
        The saved dict.

    Raises:
        error: the file holds objects other than tensors and plain containers (it could run code when unpickled),
            or it is unreadable or not a dict.
    """
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as refused:
        # PyTorch's message explains weights_only at length; the line naming the refused object is the one to show.
        named = [line.strip() for line in str(refused).splitlines() if "GLOBAL" in line or "nsupported" in line]
        raise error(
            f"{path} was refused: it holds objects other than tensors and plain containers, which could run code "
            f"when loaded{f' ({named[0]})' if named else ''}; delete it and do not load it elsewhere"
        ) from None
    except (OSError, RuntimeError, EOFError, ValueError) as unreadable:
        raise error(f"{path} is unreadable ({type(unreadable).__name__}: {unreadable}); delete it") from None
    if not isinstance(state, dict):
        raise error(f"{path} holds a {type(state).__name__}, not the dict a privfair state file holds; delete it")
    return state
