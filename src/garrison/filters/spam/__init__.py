"""Built-in anti-spam: rules, a statistical classifier, training and actions.

Modules:
- `content`: one pass over the message (MIME parts, decoded text);
- `rules`: header, structure and sender-authentication rules as symbols;
- `tokenizer` and `classifier`: tokens (CJK as bigrams) and the
  Robinson-Fisher classifier of SpamBayes and bogofilter;
- `tokens`: trained counts per scope (server, domain, user) in the
  database, how scopes combine and how growth is bounded;
- `scoring`: the rules and the classifier with `[spam]` applied, shared by
  the server, `garrison spam` and bench/spam_eval.py;
- `check`: `SpamCheck`, the "spam" check of the inbound chain;
- `training`: learning from IMAP (Junk moves, $Junk and $NotJunk, RFC 5788)
  and from files.
"""

from garrison.filters.spam.check import SpamCheck
from garrison.filters.spam.scoring import Scorer

__all__ = ["Scorer", "SpamCheck"]
