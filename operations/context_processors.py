"""Template context for the admin's maintenance banner (templates/admin/base_site.html)."""

from studymaster.maintenance import current_state


def maintenance(request) -> dict:
    """``maintenance``: the state this process acts on, when maintenance is active; else nothing."""
    state = current_state()
    return {"maintenance": state} if state.active else {}
