"""(placeholder; filled by the area owner)"""
