"""Directory: domains, accounts, aliases and credentials."""

from garrison.directory.addresses import AddressError, normalize_address
from garrison.directory.service import Account, Directory, DirectoryError, Resolution

__all__ = [
    "Account",
    "AddressError",
    "Directory",
    "DirectoryError",
    "Resolution",
    "normalize_address",
]
