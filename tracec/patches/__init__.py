"""Write-back: the source splice a patch is made of, the patch file format, and `tracec apply`'s logic."""
