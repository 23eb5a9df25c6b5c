<#-- twostep: "I lost my phone: ask an administrator" (the twostep-help-request authenticator, docs/formats.md
     "Help requests"). One template, four states set by the provider in twostepHelpMode:
     form (optional message and confirm), sent, open (asked already; time formatted by the provider in the
     user's locale), limited (realm-wide rate limit) and error. None of them signs the user in. -->
<#import "template.ftl" as layout>
<#assign twostepMode = twostepHelpMode!"error">
<@layout.registrationLayout displayMessage=!messagesPerField.existsError('message'); section>
<!-- template: twostep-help-request.ftl (twostep) -->
    <#if section = "header">
        <#if twostepMode = "form">${msg("twostepHelpTitle")}
        <#elseif twostepMode = "sent">${msg("twostepHelpSentTitle")}
        <#elseif twostepMode = "open">${msg("twostepHelpOpenTitle")}
        <#elseif twostepMode = "limited">${msg("twostepHelpLimitedTitle")}
        <#else>${msg("twostepHelpErrorTitle")}
        </#if>
    <#elseif section = "form">
        <div id="twostep-help-${twostepMode}" data-twostep-help="${twostepMode}">
        <#if twostepMode = "form">
            <p id="twostep-help-intro" class="twostep-intro">${msg("twostepHelpIntro")}</p>
            <form id="twostep-help-form" class="${properties.kcFormClass!}" action="${url.loginAction}" method="post"
                  onsubmit="twostepHelpSend.disabled = true; return true;">
                <div class="${properties.kcFormGroupClass!}">
                    <div class="${properties.kcLabelWrapperClass!}">
                        <label for="twostep-help-message" class="${properties.kcLabelClass!}">
                            <span class="pf-v5-c-form__label-text">${msg("twostepHelpMessageLabel")}</span>
                        </label>
                    </div>
                    <span class="${properties.kcInputClass!}<#if messagesPerField.existsError('message')> ${properties.kcError!}</#if>">
                        <textarea id="twostep-help-message" name="message" rows="4" maxlength="${twostepHelpMax!"500"}"
                                  aria-describedby="twostep-help-message-help<#if messagesPerField.existsError('message')> input-error-message</#if>"
                                  aria-invalid="${messagesPerField.existsError('message')?c}">${(twostepHelpMessage!"")}</textarea>
                    </span>
                    <div class="${properties.kcInputHelperTextClass!}" aria-live="polite">
                        <div class="${properties.kcInputHelperTextItemClass!}">
                            <span id="twostep-help-message-help" class="${properties.kcInputHelperTextItemTextClass!}">${msg("twostepHelpMessageHelp", twostepHelpMax!"500")}</span>
                        </div>
                    </div>
                    <#if messagesPerField.existsError('message')>
                        <div class="${properties.kcInputHelperTextClass!}" aria-live="polite">
                            <div class="${properties.kcInputHelperTextItemClass!}">
                                <span id="input-error-message" class="${properties.kcInputErrorMessageClass!}">${kcSanitize(messagesPerField.get('message'))?no_esc}</span>
                            </div>
                        </div>
                    </#if>
                </div>
                <p id="twostep-help-what" class="twostep-intro">${msg("twostepHelpWhatNext")}</p>
                <div class="${properties.kcFormGroupClass!}">
                    <button type="submit" id="twostep-help-send" name="twostepHelpSend"
                            class="${properties.kcButtonPrimaryClass!} ${properties.kcButtonBlockClass!}">${msg("twostepHelpSend")}</button>
                </div>
            </form>
        <#elseif twostepMode = "sent">
            <p id="twostep-help-sent" class="twostep-intro">${msg("twostepHelpSent")}</p>
            <section class="twostep-help" aria-labelledby="twostep-help-next-title">
                <h2 id="twostep-help-next-title">${msg("twostepHelpNextTitle")}</h2>
                <p>${msg("twostepHelpNext")}</p>
                <p><strong>${msg("twostepHelpNoSignIn")}</strong></p>
            </section>
        <#elseif twostepMode = "open">
            <p id="twostep-help-open" class="twostep-intro">
                <#if twostepHelpAskedAt??>
                    ${msg("twostepHelpOpenAt", twostepHelpAskedAt, msg(twostepHelpAgoKey, twostepHelpAgoA!"", twostepHelpAgoB!""))}
                <#else>
                    ${msg("twostepHelpOpen")}
                </#if>
            </p>
            <section class="twostep-help" aria-labelledby="twostep-help-next-title">
                <h2 id="twostep-help-next-title">${msg("twostepHelpNextTitle")}</h2>
                <p>${msg("twostepHelpOpenNext")}</p>
                <p><strong>${msg("twostepHelpNoSignIn")}</strong></p>
            </section>
        <#elseif twostepMode = "limited">
            <p id="twostep-help-limited" class="twostep-intro">${msg("twostepHelpLimited")}</p>
        <#else>
            <p id="twostep-help-error" class="twostep-intro">${msg("twostepHelpError")}</p>
        </#if>
        <#-- The way back to the other options: the parent layout's "Try another way" link when Keycloak
             shows it (more than one option), else our own button posting the same tryAnotherWay. -->
        <#if twostepMode != "sent" && !(auth?has_content && auth.showTryAnotherWayLink())>
            <form id="twostep-help-back" action="${url.loginAction}" method="post" novalidate="novalidate">
                <input type="hidden" name="tryAnotherWay" value="on"/>
                <button type="submit" id="twostep-help-other-ways"
                        class="${properties.kcButtonSecondaryClass!} ${properties.kcButtonBlockClass!}">${msg("twostepHelpOtherWays")}</button>
            </form>
        </#if>
        <p id="twostep-help-restart" class="twostep-help-restart"><a href="${url.loginRestartFlowUrl}">${msg("twostepHelpBackToSignIn")}</a></p>
        </div>
    </#if>
</@layout.registrationLayout>
