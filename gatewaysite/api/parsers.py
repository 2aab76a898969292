"""The admin API's one body parser: DRF's JSON parser, with deep nesting a 400.

Python's json module raises RecursionError (not ValueError) for ``[[[[…`` a few
thousand levels deep, which DRF would let through as a 500.
Imported by DRF's settings while rest_framework.views loads, so it imports nothing more.
"""

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser


class AdminJSONParser(JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError("JSON parse error - nested too deeply") from None
