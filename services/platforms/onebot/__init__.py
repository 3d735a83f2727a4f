"""OneBot v11 (QQ): its client (`outbound`) and its ids (`ids`); no webhook adapter yet."""
