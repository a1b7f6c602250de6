"""Phone numbers as residents type them ("06 12345678") into E.164 ("+31612345678")."""

from __future__ import annotations

from collections.abc import Collection

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberType

DEFAULT_REGION = "NL"  # a number without a country code is Dutch
# Types that can receive an SMS. FIXED_LINE_OR_MOBILE is what phonenumbers answers where a
# numbering plan does not tell the two apart (North America), so it must be let through.
TEXTABLE = (PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE_OR_MOBILE)
_KIND = {
    PhoneNumberType.FIXED_LINE: "a landline",
    PhoneNumberType.TOLL_FREE: "a toll-free number",
    PhoneNumberType.PREMIUM_RATE: "a premium-rate number",
    PhoneNumberType.SHARED_COST: "a shared-cost number",
    PhoneNumberType.VOIP: "an internet (VoIP) number",
    PhoneNumberType.UAN: "a company (UAN) number",
    PhoneNumberType.PAGER: "a pager number",
    PhoneNumberType.VOICEMAIL: "a voicemail number",
    PhoneNumberType.PERSONAL_NUMBER: "a personal (forwarding) number",
}


def to_e164(address: str, allowed_countries: Collection[str]) -> str:
    """The number in E.164; ``ValueError`` with a reason a resident understands otherwise."""
    try:
        number = phonenumbers.parse(address.strip(), DEFAULT_REGION)
    except NumberParseException as exc:
        raise ValueError(f"{address.strip()!r} is not a phone number") from exc
    if not phonenumbers.is_valid_number(number):
        raise ValueError(f"{address.strip()!r} is not a valid phone number")
    country = str(number.country_code)
    if allowed_countries and country not in allowed_countries:
        allowed = ", ".join(f"+{c}" for c in sorted(allowed_countries))
        raise ValueError(f"numbers from country +{country} are not accepted (only {allowed})")
    kind = phonenumbers.number_type(number)
    if kind not in TEXTABLE:
        raise ValueError(f"this is {_KIND.get(kind, 'a number')} that cannot receive SMS")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
