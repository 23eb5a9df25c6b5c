<#-- twostep: the access pass page (the twostep-access-pass authenticator, docs/provider.md "The access pass").
     The provider sets twostepPassBy (who granted it), twostepPassUntil (the end, in the user's locale) and
     twostepPassUse (once | multi; none when no usable pass is left). The pass replaces the one-time code. -->
<#import "template.ftl" as layout>
<#assign twostepUse = twostepPassUse!"none">
<@layout.registrationLayout displayMessage=!messagesPerField.existsError('pass'); section>
<!-- template: twostep-access-pass.ftl (twostep) -->
    <#if section = "header">
        ${msg("twostepPassTitle")}
    <#elseif section = "form">
        <div id="twostep-pass-${twostepUse}" data-twostep-pass="${twostepUse}">
        <#if twostepUse != "none">
            <p id="twostep-pass-granted" class="twostep-intro">${msg("twostepPassGranted", twostepPassBy!"", twostepPassUntil!"")}</p>
            <p id="twostep-pass-use">${msg((twostepUse == "multi")?then("twostepPassMulti", "twostepPassOnce"))}</p>
        <#else>
            <p id="twostep-pass-none" class="twostep-intro">${msg("twostepPassNone")}</p>
        </#if>
        <form id="twostep-pass-form" class="${properties.kcFormClass!}" onsubmit="twostepPassSend.disabled = true; return true;"
              action="${url.loginAction}" method="post">
            <div class="${properties.kcFormGroupClass!}">
                <div class="${properties.kcLabelWrapperClass!}">
                    <label for="twostep-pass" class="${properties.kcLabelClass!}">
                        <span class="pf-v5-c-form__label-text">${msg("twostepPassLabel")}</span>
                    </label>
                </div>
                <span class="${properties.kcInputClass!}<#if messagesPerField.existsError('pass')> ${properties.kcError!}</#if>">
                    <input id="twostep-pass" name="pass" type="text" autocomplete="off" autocapitalize="characters"
                           spellcheck="false" autofocus placeholder="XXXX-XXXX-XXXX-XXXX"
                           aria-describedby="twostep-pass-help<#if messagesPerField.existsError('pass')> input-error-pass</#if>"
                           aria-invalid="${messagesPerField.existsError('pass')?c}"/>
                </span>
                <div class="${properties.kcInputHelperTextClass!}" aria-live="polite">
                    <div class="${properties.kcInputHelperTextItemClass!}">
                        <span id="twostep-pass-help" class="${properties.kcInputHelperTextItemTextClass!}">${msg("twostepPassHelp")}</span>
                    </div>
                </div>
                <#if messagesPerField.existsError('pass')>
                    <div class="${properties.kcInputHelperTextClass!}" aria-live="polite">
                        <div class="${properties.kcInputHelperTextItemClass!}">
                            <span id="input-error-pass" class="${properties.kcInputErrorMessageClass!}">${kcSanitize(messagesPerField.get('pass'))?no_esc}</span>
                        </div>
                    </div>
                </#if>
            </div>
            <div class="${properties.kcFormGroupClass!}">
                <button type="submit" id="twostep-pass-send" name="twostepPassSend"
                        class="${properties.kcButtonPrimaryClass!} ${properties.kcButtonBlockClass!}">${msg("twostepPassSend")}</button>
            </div>
        </form>
        <p id="twostep-pass-after">${msg("twostepPassAfter")}</p>
        </div>
    </#if>
</@layout.registrationLayout>
