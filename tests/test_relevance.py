import pytest

from pipelines.relevance import assess_relevance


@pytest.mark.parametrize(
    "text",
    [
        "The Kremlin summoned Azerbaijan's ambassador after the raid in Yekaterinburg.",
        "Кремль вызвал посла Азербайджана после рейда в Екатеринбурге.",
        "Москва и Баку обменялись резкими заявлениями.",
        "Rusiya ilə Azərbaycan arasında gərginlik artır.",
        "Rusya ile Azerbaycan arasındaki gerilim tırmanıyor.",
        "Відносини між Росією та Азербайджаном погіршилися.",
        "Putin called Aliyev after the AZAL crash.",
        # Armenian and Georgian, inflected
        "Ռուսաստանի և Ադրբեջանի հարաբերությունները վատթարացել են։",
        "Կրեմլը Բաքվում արտահայտված մեղադրանքները մերժեց, իսկ Ալիևը պատասխանեց։",
        "რუსეთსა და აზერბაიჯანს შორის ურთიერთობები გაუარესდა.",
        "კრემლმა ბაქოს ბრალდებები უარყო, ალიევმა კი უპასუხა.",
    ],
)
def test_relevant_in_several_languages(text: str) -> None:
    result = assess_relevance(text)
    assert result.relevant, result
    assert result.russia_terms and result.azerbaijan_terms


def test_title_counts() -> None:
    assert assess_relevance(
        "Talks continued on Monday in Moscow.", title="Azerbaijan's minister visits"
    ).relevant


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("Lisbon tram drivers strike for a second day.", "names neither Russia nor Azerbaijan"),
        ("Moscow hosts a chess festival.", "names Russia but not Azerbaijan"),
        ("Baku opens a new metro station.", "names Azerbaijan but not Russia"),
        ("Երևանում նոր մետրոյի կայարան է բացվել։", "names neither Russia nor Azerbaijan"),
        ("მოსკოვში ჭადრაკის ფესტივალი გაიმართა.", "names Russia but not Azerbaijan"),
        ("Բաքվում նոր մետրոյի կայարան է բացվել։", "names Azerbaijan but not Russia"),
    ],
)
def test_irrelevant_with_reason(text: str, reason: str) -> None:
    result = assess_relevance(text)
    assert not result.relevant
    assert result.reason == reason


def test_no_false_hits_inside_words() -> None:
    # "prussia" must not count as Russia, "abakus" not as Baku
    assert not assess_relevance("Prussian history and the abakus of Bakunin's era.").relevant
