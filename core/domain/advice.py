"""What the optional LLM advisor answers (docs/design.md §1 step 9, track b).

Kept in the core, free of any HTTP library, so the decision manager can take an answer from any
advisor adapter. An answer is untrusted text: the decision manager runs `parse_operation` on
`action` and discards it when it does not parse; nothing here vouches for it.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class AdvisorAnswer(BaseModel):
    model_config = ConfigDict(frozen=True)

    # Trimmed, otherwise exactly as the model wrote it; never "NONE" (that is no answer at all).
    action: str
    rationale: str = ""
